//! The host's end of a tunnel to a port inside the sandbox (`Connect`): a
//! byte stream like a TCP connection's, carried over the control channel.

use crate::client::{Client, ClientError};
use crate::codec::CHUNK;
use crate::messages::{Request, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

impl Client {
    /// Connects to `port` on the sandbox's loopback. The returned stream
    /// reads what the server there sends and writes to it; shutting down its
    /// write side half-closes the connection, dropping it ends the tunnel.
    /// Fails with `Remote` (kind `Refused`) when nothing listens there.
    pub async fn connect_port(&self, port: u16) -> Result<DuplexStream, ClientError> {
        let mut down = self.stream(Request::Connect { port })?;
        match down.next().await? {
            Some(Response::Connected) => {}
            Some(other) => return Err(ClientError::Unexpected(format!("{other:?}"))),
            None => return Err(ClientError::Disconnected),
        }
        let id = down.id();
        let (caller, ours) = tokio::io::duplex(2 * CHUNK);
        let (mut from_caller, mut to_caller) = tokio::io::split(ours);
        let client = self.clone();
        // The sandbox's server -> the caller. Credit goes back only as the
        // caller reads, so a slow reader slows the server down.
        tokio::spawn(async move {
            while let Ok(Some(r)) = down.next().await {
                if let Response::Data(d) = r {
                    if to_caller.write_all(&d).await.is_err() {
                        break;
                    }
                }
            }
            let _ = to_caller.shutdown().await;
            if !down.is_done() {
                // The caller went away first: end the tunnel in the sandbox.
                let _ = client.send_unanswered(&Request::Cancel { stream: id });
            }
        });
        let client = self.clone();
        // The caller -> the sandbox's server, one chunk in flight at a time.
        tokio::spawn(async move {
            let mut buf = vec![0u8; CHUNK];
            loop {
                match from_caller.read(&mut buf).await {
                    Ok(0) | Err(_) => {
                        let _ = client.call_done(Request::CloseSend { stream: id }).await;
                        return;
                    }
                    Ok(n) => {
                        let send = Request::Send {
                            stream: id,
                            data: buf[..n].to_vec(),
                        };
                        if client.call_done(send).await.is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Ok(caller)
    }
}
