//! A `Batch`: path operations run one after another on one blocking
//! thread, answered together (see `warden_protocol::BatchOp`).

use crate::files::{resolve, temp_for};
use crate::path_ops;
use crate::State;
use std::path::PathBuf;
use warden_protocol::{BatchOp, ErrorKind, Response, BATCH_ANSWER_BYTES, MAX_BATCH_OPS};

/// An operation with its paths resolved, or the answer it already has.
enum Ready {
    Op(BatchOp, PathBuf, Option<PathBuf>),
    Answered(Response),
}

pub async fn run(state: &State, ops: Vec<BatchOp>) -> Response {
    if ops.len() > MAX_BATCH_OPS {
        return Response::error(
            ErrorKind::BadRequest,
            format!(
                "a batch of {} operations (at most {MAX_BATCH_OPS})",
                ops.len()
            ),
        );
    }
    // Resolved here: the working directory and temp names are the loop's.
    let ready: Vec<Ready> = ops
        .into_iter()
        .map(|op| {
            let p = match resolve(state, op.path()) {
                Ok(p) => p,
                Err(e) => return Ready::Answered(e),
            };
            let tmp = match &op {
                BatchOp::PutFile { .. } => match temp_for(state, &p) {
                    Ok((_, tmp)) => Some(tmp),
                    Err(e) => return Ready::Answered(e),
                },
                _ => None,
            };
            Ready::Op(op, p, tmp)
        })
        .collect();
    let answers = tokio::task::spawn_blocking(move || run_all(ready)).await;
    match answers {
        Ok(a) => Response::Batch(a),
        Err(e) => Response::error(ErrorKind::Io, format!("the batch failed: {e}")),
    }
}

/// Runs each operation in turn until the answers reach
/// [`BATCH_ANSWER_BYTES`] (at least one always runs).
fn run_all(ready: Vec<Ready>) -> Vec<Response> {
    let mut answers = Vec::with_capacity(ready.len());
    let mut bytes = 0;
    for r in ready {
        if bytes >= BATCH_ANSWER_BYTES {
            break;
        }
        let answer = match r {
            Ready::Answered(a) => a,
            Ready::Op(op, p, tmp) => run_one(op, &p, tmp),
        };
        bytes += size(&answer);
        answers.push(answer);
    }
    answers
}

fn run_one(op: BatchOp, p: &std::path::Path, tmp: Option<PathBuf>) -> Response {
    match op {
        BatchOp::ListDir { .. } => path_ops::list_dir(p),
        BatchOp::Stat { .. } => path_ops::stat(p),
        BatchOp::Mkdir { parents, .. } => path_ops::mkdir(p, parents),
        BatchOp::Remove { recursive, .. } => path_ops::remove(p, recursive),
        BatchOp::Symlink { target, .. } => path_ops::symlink(&target, p),
        BatchOp::SetMeta { mode, mtime_ns, .. } => path_ops::set_meta(p, mode, mtime_ns),
        BatchOp::PutFile {
            mode,
            mtime_ns,
            data,
            ..
        } => match tmp {
            Some(tmp) => path_ops::put_file(p, &tmp, (mode, mtime_ns), &data),
            None => Response::error(ErrorKind::Io, "no temp file name"),
        },
    }
}

/// About what `answer` takes in the frame (a listing's names, links and
/// metadata, and a fixed part per entry).
fn size(answer: &Response) -> usize {
    match answer {
        Response::Entries(es) => es
            .iter()
            .map(|e| {
                let link = e.stat.link_target.as_ref().map_or(0, Vec::len);
                let resolved = e.stat.resolved.as_ref().map_or(0, |r| r.path.len());
                let meta: usize = e.stat.meta.iter().map(|(k, v)| k.len() + v.len()).sum();
                e.name.len() + link + resolved + meta + 64
            })
            .sum(),
        Response::Stat(st) => {
            st.link_target.as_ref().map_or(0, Vec::len)
                + st.resolved.as_ref().map_or(0, |r| r.path.len())
                + 64
        }
        Response::Error(e) => e.message.len() + 16,
        _ => 16,
    }
}
