//! HTTP handlers, one module per resource.

pub mod audit;
pub mod code;
pub mod code_stream;
pub mod command_policy;
pub mod egress;
pub mod exec;
pub mod exec_budget;
pub mod exec_json;
pub mod files;
pub mod health;
pub mod images;
pub mod isolation;
pub mod pause;
pub mod ports;
pub mod processes;
pub mod review_outputs;
pub mod reviews;
pub mod sandboxes;
pub mod sbfiles;
pub mod schedules;
pub mod secrets;
pub mod snapshots;
pub mod table;
pub mod tenants;
pub mod volumes;
