//! E2B envd's wire protocol: the protobuf messages of its `process` and
//! `filesystem` services (from our own .proto files, proto3 JSON mapping
//! included) and the Connect RPC framing the SDKs speak.

pub mod connect;

// The well-known types the messages use (`Timestamp`).
pub use pbjson_types;
pub use prost;

#[allow(clippy::all)]
pub mod process {
    include!(concat!(env!("OUT_DIR"), "/process.rs"));
    include!(concat!(env!("OUT_DIR"), "/process.serde.rs"));
}

#[allow(clippy::all)]
pub mod filesystem {
    include!(concat!(env!("OUT_DIR"), "/filesystem.rs"));
    include!(concat!(env!("OUT_DIR"), "/filesystem.serde.rs"));
}

#[cfg(test)]
mod tests;
