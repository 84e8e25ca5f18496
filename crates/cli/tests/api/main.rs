//! The HTTP API against a real `warden serve` on loopback: real sandboxes,
//! a real SQLite database and object store in a temporary data directory.

mod harness;

mod bad_input;
mod cli;
mod code;
mod console;
mod e2b_control;
mod e2b_envd;
mod e2b_envd_guards;
mod e2b_sdk;
mod egress;
mod flows;
mod host_dirs;
mod images;
mod integrity;
mod isolation;
mod job_cleanup;
mod job_export;
mod job_faults;
mod job_limits;
mod layout;
mod lifecycle;
mod mcp;
mod parallel_exec;
mod pause;
mod pause_memory;
mod policy;
mod ports;
mod reviews;
mod schedules;
mod sdks;
mod secrets;
mod server_limits;
mod server_memory;
mod snapshots;
mod storage;
mod tiers;
mod tty;
mod uploads;
mod volumes;
mod watch_limits;
mod workflow;
