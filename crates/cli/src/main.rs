//! `warden`: the command-line front end.

mod bench;
mod bench_api;
mod bench_cli;
mod bench_e2b;
mod bench_egress;
mod bench_gvisor;
mod bench_gvisor_api;
mod bench_jobs;
mod bench_measure;
mod bench_run;
mod bench_sdk;
mod bench_server;
mod bench_state;
mod client;
mod run;
mod run_egress;
mod runtime;
mod serve;

use clap::error::ErrorKind;
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
    /// Serve the multi-tenant HTTP API (see docs/api.md).
    Serve(serve::ServeArgs),
    /// Measure sandbox start-up against baselines.
    Bench {
        #[command(subcommand)]
        what: bench::BenchCommand,
    },
    /// Manage tenants on a Warden server (admin token).
    Tenant(client::tenant::TenantArgs),
    /// Manage a tenant's API keys (admin token).
    Key(client::key::KeyArgs),
    /// Upload, list, download and delete stored files.
    File(client::file::FileArgs),
    /// Create, list, inspect and destroy sandboxes on a Warden server.
    Sandbox(client::sandbox::SandboxArgs),
    /// Run a command in a sandbox on a Warden server, streaming its output.
    Exec(Box<client::exec::ExecArgs>),
    /// Store, list and delete the tenant's secrets (write-only values).
    Secret(client::secret::SecretArgs),
    /// Create, list and delete the tenant's volumes (persistent file
    /// systems sandboxes mount).
    Volume(client::volume::VolumeArgs),
    /// Take, list and delete snapshots of sandboxes' files (new sandboxes
    /// start from them with `warden sandbox create --snapshot`).
    Snapshot(client::snapshot::SnapshotArgs),
    /// List images; build your own from a recipe, each step cached.
    Image(client::image::ImageArgs),
    /// Submit review jobs on a cron schedule; list, pause, resume, delete.
    Schedule(client::schedule::ScheduleArgs),
    /// Read the tenant's audit log.
    Audit(client::audit::AuditArgs),
    /// Show what the tenant's sandboxes used.
    Usage(client::usage::UsageArgs),
    /// Submit review jobs (files + a command), follow them, fetch outputs.
    Review(client::review::ReviewArgs),
    /// Serve Warden's MCP tools on stdin/stdout for an agent (tenant key;
    /// the server also serves them at /mcp).
    Mcp(client::mcp::McpArgs),
}

/// `warden run`'s arguments alone. Clap builds the whole command tree,
/// every subcommand's every argument, before it parses anything: ~0.35 ms
/// of each `warden run`, a process whose whole life is a few milliseconds.
#[derive(Parser)]
#[command(no_binary_name = true)]
struct RunOnly {
    #[command(flatten)]
    args: run::RunArgs,
}

/// `warden run …` parsed without the rest of the tree, when that parse
/// succeeds. Help, usage errors and every other command take the whole
/// tree, so what they print is the same either way.
fn parse_run() -> Option<run::RunArgs> {
    let mut args = std::env::args_os().skip(1);
    if args.next()? != "run" {
        return None;
    }
    RunOnly::try_parse_from(args).ok().map(|r| r.args)
}

/// Parses the command line. Help and version print as usual; any other
/// usage error is Warden's own error: one line `warden: …`, status 125.
fn parse() -> Cli {
    match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => match e.kind() {
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => e.exit(),
            ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                let _ = e.print();
                std::process::exit(client::WARDEN_ERROR)
            }
            _ => std::process::exit(client::fail(anyhow::anyhow!(usage_line(&e.to_string())))),
        },
    }
}

/// The gist of a clap error on one line: its text up to the usage summary,
/// without the `error:` prefix.
fn usage_line(text: &str) -> String {
    let gist: Vec<&str> = text
        .lines()
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let line = gist.join(" ");
    line.strip_prefix("error: ").unwrap_or(&line).to_string()
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WARDEN_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Some(args) = parse_run() {
        std::process::exit(run::main(args));
    }
    let cli = parse();
    let code = match cli.command {
        Command::Run(args) => run::main(*args),
        Command::Serve(a) => serve::main(a),
        Command::Bench { what } => bench::main(what),
        Command::Tenant(a) => client::main(client::tenant::run(a)),
        Command::Key(a) => client::main(client::key::run(a)),
        Command::Secret(a) => client::main(client::secret::run(a)),
        Command::Volume(a) => client::main(client::volume::run(a)),
        Command::Snapshot(a) => client::main(client::snapshot::run(a)),
        Command::Schedule(a) => client::main(client::schedule::run(a)),
        Command::Image(a) => client::main(client::image::run(a)),
        Command::File(a) => client::main(client::file::run(a)),
        Command::Sandbox(a) => client::main(client::sandbox::run(a)),
        Command::Exec(a) => client::main(client::exec::run(*a)),
        Command::Audit(a) => client::main(client::audit::run(a)),
        Command::Usage(a) => client::main(client::usage::run(a)),
        Command::Review(a) => client::main(client::review::run(a)),
        Command::Mcp(a) => client::main(client::mcp::run(a)),
    };
    std::process::exit(code);
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    /// The short way accepts exactly what the whole tree accepts under
    /// `run`, and reads it the same.
    #[test]
    fn run_parses_alike_without_the_whole_tree() {
        let cases: &[&[&str]] = &[
            &["/bin/true"],
            &["--", "ls", "-l", "--json"],
            &["--memory", "256M", "--cpus", "0.5", "-e", "A=1", "-i", "sh"],
            &[
                "--isolation",
                "gvisor",
                "--writable-root",
                "--user",
                "user",
                "id",
            ],
            &[
                "--allow-host",
                "pypi.org",
                "--image",
                "/x",
                "python3",
                "--help",
            ],
            &["--help"],
            &["-h"],
            &["--version"],
            &[],
            &["--isolation", "vm", "true"],
            &["--cpus"],
            &["--no-such-flag", "true"],
        ];
        for case in cases {
            let short = RunOnly::try_parse_from(case.iter()).ok();
            let whole = Cli::try_parse_from(["warden", "run"].iter().chain(case.iter()));
            match (short, whole) {
                (
                    Some(s),
                    Ok(Cli {
                        command: Command::Run(w),
                    }),
                ) => {
                    assert_eq!(format!("{:?}", s.args), format!("{w:?}"), "{case:?}")
                }
                (None, Err(_)) => {}
                (s, w) => panic!("{case:?}: short {:?}, whole {:?}", s.is_some(), w.is_ok()),
            }
        }
    }

    #[test]
    fn usage_errors_fit_on_one_line() {
        let e = Cli::try_parse_from(["warden", "key", "create"])
            .err()
            .expect("--tenant is required");
        let line = usage_line(&e.to_string());
        assert!(line.contains("--tenant"), "{line}");
        assert!(!line.contains('\n') && !line.starts_with("error"), "{line}");
        let e = Cli::try_parse_from(["warden", "audit", "list", "--limit", "0"])
            .err()
            .expect("--limit 0 is out of range");
        assert!(usage_line(&e.to_string()).contains("--limit"));
    }

    #[test]
    fn shared_flags_go_anywhere_after_the_group() {
        let cli = Cli::try_parse_from([
            "warden",
            "tenant",
            "create",
            "acme",
            "--json",
            "--url",
            "http://h:1",
            "--admin-token",
            "t",
            "--max-memory",
            "8G",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(cli.command, Command::Tenant(_)));
        let cli = Cli::try_parse_from([
            "warden", "exec", "sbx_1", "--shell", "--", "ls", "-l", "--json",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        match cli.command {
            Command::Exec(a) => {
                assert_eq!(a.command, ["ls", "-l", "--json"]);
                assert!(a.shell);
            }
            _ => panic!("not exec"),
        }
    }
}
