//! The HTTP API against a real `warden serve` on loopback: real sandboxes,
//! a real SQLite database and object store in a temporary data directory.

mod harness;

mod bad_input;
mod cli;
mod e2b_control;
mod e2b_envd;
mod e2b_sdk;
mod egress;
mod flows;
mod integrity;
mod isolation;
mod lifecycle;
mod policy;
mod reviews;
mod secrets;
mod storage;
mod tiers;
mod uploads;
mod workflow;
