//! The control protocol between the host and the in-sandbox init.
//!
//! One inherited socket carries every exchange: a fixed preamble with the
//! protocol version, then length-prefixed binary frames (see [`codec`]).
//! Requests are multiplexed by id, so exec streams, file transfers, process
//! control and directory watches run concurrently over the same channel.
//! Every isolation backend speaks exactly this protocol to exactly the same
//! init.

mod batch;
mod calls;
pub mod client;
pub mod codec;
pub mod messages;
pub mod passing;
mod piped;
mod tunnel;
pub mod watch;
mod write;

pub use batch::{BatchAnswer, BatchOp, BATCH_ANSWER_BYTES, BATCH_BYTES, MAX_BATCH_OPS};
pub use calls::ChangesWalk;
pub use client::{Client, ClientError, ExecOutput, ResponseStream, WINDOW};
pub use codec::{CodecError, Frame, CHUNK, MAX_FRAME, VERSION};
pub use messages::*;
pub use passing::FileReader;
pub use piped::{PipedRead, NO_PIPE};
pub use watch::Watch;
pub use write::{FileWriter, WRITE_CHUNK};
