//! Resource ids: a type prefix and 20 random base32 characters (100 bits),
//! so ids cannot be guessed, and one kind of id cannot be passed as another.

use serde::{Deserialize, Serialize};
use std::fmt;

const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
const RANDOM_LEN: usize = 20;

fn random_part() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..RANDOM_LEN)
        .map(|_| ALPHABET[rng.random_range(0..32)] as char)
        .collect()
}

fn well_formed(s: &str, prefix: &str) -> bool {
    s.len() == prefix.len() + RANDOM_LEN
        && s.starts_with(prefix)
        && s[prefix.len()..].bytes().all(|b| ALPHABET.contains(&b))
}

macro_rules! id_type {
    ($name:ident, $prefix:literal) => {
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            pub fn generate() -> Self {
                $name(format!("{}{}", $prefix, random_part()))
            }

            /// Accepts only a well-formed id (anything else cannot name a
            /// resource, so callers answer "not found").
            pub fn parse(s: &str) -> Option<Self> {
                well_formed(s, $prefix).then(|| $name(s.to_owned()))
            }

            /// For values read back from the store, which only ever holds
            /// ids made by `generate`.
            pub fn from_stored(s: String) -> Self {
                $name(s)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(TenantId, "tn_");
id_type!(KeyId, "key_");
id_type!(FileId, "file_");
id_type!(SandboxId, "sbx_");
id_type!(ReviewId, "rev_");
id_type!(DeliveryId, "whd_");
id_type!(OutputId, "out_");
id_type!(VolumeId, "vol_");
id_type!(ScheduleId, "sch_");
id_type!(SnapshotId, "snp_");
// The object key of one stored blob (see `sqlite/snapshots.rs`).
id_type!(BlobKey, "blob_");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_and_others_do_not() {
        let t = TenantId::generate();
        assert_eq!(TenantId::parse(t.as_str()), Some(t.clone()));
        assert_eq!(
            FileId::parse(t.as_str()),
            None,
            "a tenant id is not a file id"
        );
        assert_eq!(TenantId::parse("tn_../../etc"), None);
        assert_eq!(TenantId::parse("tn_AAAAAAAAAAAAAAAAAAAA"), None);
        assert_ne!(TenantId::generate(), TenantId::generate());
    }
}
