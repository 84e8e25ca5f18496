// `sqlx::migrate!` embeds the migrations at compile time but cannot tell
// cargo to watch them on stable Rust; without this, an added or edited
// migration would not be picked up until something else changed.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
