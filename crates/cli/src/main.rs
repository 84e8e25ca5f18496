//! `warden`: the command-line front end.

mod bench;
mod run;
mod runtime;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "warden",
    version,
    about = "Kernel-isolated sandboxes for AI agents"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one command in a fresh sandbox, stream its output, export /output.
    Run(Box<run::RunArgs>),
    /// Measure sandbox start-up against baselines.
    Bench {
        #[command(subcommand)]
        what: bench::BenchCommand,
    },
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WARDEN_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Run(args) => run::main(*args),
        Command::Bench { what } => bench::main(what),
    };
    std::process::exit(code);
}
