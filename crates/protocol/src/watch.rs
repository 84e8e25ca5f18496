//! The host side of a directory watch: [`Client::watch`] and [`Watch`].

use crate::client::{Client, ClientError, ResponseStream};
use crate::messages::{FsEvent, Request, Response};

/// A live watch on a directory in the sandbox. Dropping it cancels it
/// (best effort: the `Cancel` is sent, not waited for).
pub struct Watch {
    stream: ResponseStream,
    client: Client,
}

impl Client {
    /// Starts watching `path` (with `recursive`, its whole tree) and returns
    /// once the watch is in place: a change made after this returns is
    /// reported. The init's refusal (e.g. `NotFound`, `NotADirectory`,
    /// `PermissionDenied` for a symlink, `TooLarge` past the limits) is
    /// `ClientError::Remote`.
    pub async fn watch(&self, path: &str, recursive: bool) -> Result<Watch, ClientError> {
        let mut stream = self.stream(Request::Watch {
            path: path.into(),
            recursive,
        })?;
        match stream.next().await? {
            Some(Response::Watching) => Ok(Watch {
                stream,
                client: self.clone(),
            }),
            Some(other) => Err(ClientError::Unexpected(format!("{other:?}"))),
            None => Err(ClientError::Disconnected),
        }
    }
}

impl Watch {
    /// The request id (what `Cancel` refers to).
    pub fn id(&self) -> u32 {
        self.stream.id()
    }

    /// The next batch of changes, oldest first; `Ok(None)` once the watch
    /// was cancelled. A watch that ends on its own (the directory was
    /// removed, the event queue overflowed) ends with
    /// `ClientError::Remote`.
    pub async fn next(&mut self) -> Result<Option<Vec<FsEvent>>, ClientError> {
        match self.stream.next().await? {
            Some(Response::FsEvents(events)) => Ok(Some(events)),
            Some(Response::Done) | None => Ok(None),
            Some(other) => Err(ClientError::Unexpected(format!("{other:?}"))),
        }
    }

    /// Stops the watch and waits until the init has ended it (events still
    /// in flight are discarded).
    pub async fn cancel(mut self) {
        if self.send_cancel().is_err() {
            return;
        }
        while let Ok(Some(_)) = self.stream.next().await {}
    }

    fn send_cancel(&self) -> Result<(), ClientError> {
        self.client.send_unanswered(&Request::Cancel {
            stream: self.stream.id(),
        })
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if !self.stream.is_done() {
            let _ = self.send_cancel();
        }
    }
}

#[cfg(test)]
mod tests {
    /// A `Watch` can be held by a task of a multi-threaded server.
    #[test]
    fn watch_is_send() {
        fn send<T: Send + 'static>() {}
        send::<super::Watch>();
    }
}
