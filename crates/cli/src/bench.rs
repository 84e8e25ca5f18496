//! `warden bench`: start-up figures against baselines (filled in below).

use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Sandbox create -> /bin/true -> destroy, next to unshare and bwrap.
    Run {
        /// Cycles per contender.
        #[arg(long, default_value_t = 200)]
        iterations: usize,
    },
}

pub fn main(cmd: BenchCommand) -> i32 {
    match cmd {
        BenchCommand::Run { iterations } => {
            eprintln!("bench: {iterations} iterations (not yet implemented)");
            125
        }
    }
}
