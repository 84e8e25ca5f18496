//! Streaming file bodies up and down with a progress bar on stderr.
//!
//! Uploads stream the file as the raw body of `POST /v1/files?name=…` with
//! its length declared up front. Downloads land in a temporary file beside
//! the target and are renamed into place only once every byte arrived and
//! the SHA-256 matched the `ETag`, so a failed download leaves nothing.

use super::http::{Api, ApiError, Unreachable};
use anyhow::{anyhow, bail, Context, Result};
use futures_util::{StreamExt, TryStreamExt};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, ETAG};
use reqwest::{Body, Method};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::IsTerminal;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_util::io::ReaderStream;

/// Read size for uploads.
const CHUNK: usize = 64 << 10;

/// A byte progress bar on stderr (bytes, rate, ETA), hidden when stderr is
/// not a terminal or when `quiet`.
pub fn progress(len: Option<u64>, quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let (bar, template) = match len {
        Some(n) => (
            ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::stderr()),
            "{bytes}/{total_bytes} [{wide_bar}] {binary_bytes_per_sec} ETA {eta}",
        ),
        None => (
            ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
            "{spinner} {bytes} {binary_bytes_per_sec} {elapsed}",
        ),
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// The name a file is stored under: `--name`, else the path's file name.
pub fn upload_name(path: &Path, name: Option<&str>) -> Result<String> {
    if let Some(n) = name {
        return Ok(n.to_string());
    }
    path.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_string)
        .ok_or_else(|| {
            anyhow!(
                "cannot take a UTF-8 name from {}; pass --name",
                path.display()
            )
        })
}

/// Uploads `path`; returns the server's File JSON.
pub async fn upload(api: &Api, path: &Path, name: Option<&str>, quiet: bool) -> Result<Value> {
    let name = upload_name(path, name)?;
    let file = tokio::fs::File::open(path)
        .await
        .with_context(|| format!("cannot open {}", path.display()))?;
    let meta = file
        .metadata()
        .await
        .with_context(|| format!("cannot stat {}", path.display()))?;
    if !meta.is_file() {
        bail!("{} is not a regular file", path.display());
    }
    let len = meta.len();
    let bar = progress(Some(len), quiet);
    let ticker = bar.clone();
    // Never send more than was declared, even if the file grows meanwhile.
    let body = ReaderStream::with_capacity(file.take(len), CHUNK)
        .inspect_ok(move |chunk| ticker.inc(chunk.len() as u64));
    let rb = api
        .request(Method::POST, &["v1", "files"])?
        .query(&[("name", name.as_str())])
        .header(CONTENT_TYPE, "application/octet-stream")
        .header(CONTENT_LENGTH, len)
        .body(Body::wrap_stream(body));
    let answer = api.json(rb).await;
    bar.finish_and_clear();
    answer.map_err(|e| {
        if e.is::<ApiError>() || e.is::<Unreachable>() {
            e
        } else {
            // A server that refuses a body early (over a quota) and closes
            // the connection shows up here rather than as its 413.
            e.context(format!(
                "the upload of {} broke off ({len} bytes; is it over the \
                 tenant's max_file_bytes or max_storage_bytes?)",
                path.display()
            ))
        }
    })
}

/// The SHA-256 an `ETag` names, if it names one (quotes and a weak prefix
/// are allowed around the 64 hex digits).
pub fn etag_sha256(etag: &str) -> Option<String> {
    let t = etag.trim();
    let t = t.strip_prefix("W/").unwrap_or(t).trim_matches('"');
    let t = t.strip_prefix("sha256:").unwrap_or(t);
    (t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit())).then(|| t.to_ascii_lowercase())
}

/// Where `-o PATH` puts the file: PATH, or `PATH/<stored name>` when PATH is
/// a directory.
fn target_path(output: &Path, stored_name: Option<&str>) -> Result<PathBuf> {
    if !output.is_dir() {
        return Ok(output.to_path_buf());
    }
    let name = stored_name.context("the file's stored name is unknown")?;
    let p = Path::new(name);
    if name.is_empty() || p.file_name() != Some(p.as_os_str()) {
        bail!("the stored name {name:?} cannot be used as a file name; pass -o FILE");
    }
    Ok(output.join(p))
}

/// Downloads file `id` to `output` (stdout when `None`). With `as_json`,
/// `output` is required and the File JSON is returned to be printed.
pub async fn download(api: &Api, id: &str, output: Option<&Path>, as_json: bool) -> Result<Value> {
    let Some(output) = output else {
        if as_json {
            bail!("--json prints the file's metadata on stdout; pass -o PATH for the bytes");
        }
        let mut stdout = tokio::io::stdout();
        let resp = fetch(api, id).await?;
        return match receive(resp, &mut stdout, as_json).await {
            Err(e) if is_broken_pipe(&e) => Ok(Value::Null),
            other => other.map(|_| Value::Null),
        };
    };
    let meta = if as_json || output.is_dir() {
        api.get(&["v1", "files", id], &[]).await?
    } else {
        Value::Null
    };
    let target = target_path(output, meta.get("name").and_then(Value::as_str))?;
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let resp = fetch(api, id).await?;
    // Created with 0666 less the umask, as a plain create would be.
    let tmp = tempfile::Builder::new()
        .prefix(".warden-download-")
        .permissions(std::fs::Permissions::from_mode(0o666))
        .tempfile_in(&dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    let mut file = tokio::fs::File::from_std(
        tmp.as_file()
            .try_clone()
            .context("cannot reopen the temporary file")?,
    );
    receive(resp, &mut file, as_json).await?;
    file.sync_all()
        .await
        .with_context(|| format!("writing {}", target.display()))?;
    drop(file);
    tmp.persist(&target)
        .map_err(|e| anyhow!(e.error))
        .with_context(|| format!("cannot move the download to {}", target.display()))?;
    Ok(meta)
}

async fn fetch(api: &Api, id: &str) -> Result<reqwest::Response> {
    api.send(api.request(Method::GET, &["v1", "files", id, "content"])?)
        .await
}

/// Copies the body to `out`, checking its length and, when the `ETag` names
/// one, its SHA-256.
async fn receive<W>(resp: reqwest::Response, out: &mut W, quiet: bool) -> Result<u64>
where
    W: AsyncWrite + Unpin,
{
    let expected_len = resp
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let expected_sha = resp
        .headers()
        .get(ETAG)
        .and_then(|v| v.to_str().ok())
        .and_then(etag_sha256);
    let bar = progress(expected_len, quiet);
    let mut hasher = Sha256::new();
    let mut got = 0u64;
    let mut body = resp.bytes_stream();
    let result = async {
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| anyhow!("the download broke off: {e}"))?;
            hasher.update(&chunk);
            out.write_all(&chunk).await?;
            got += chunk.len() as u64;
            bar.inc(chunk.len() as u64);
        }
        out.flush().await?;
        Ok::<_, anyhow::Error>(())
    }
    .await;
    bar.finish_and_clear();
    result?;
    if let Some(n) = expected_len {
        if n != got {
            bail!("the download broke off: {got} of {n} bytes arrived");
        }
    }
    if let Some(want) = expected_sha {
        let have = hex(&hasher.finalize());
        if have != want {
            bail!("the download is corrupt: its SHA-256 is {have}, the server said {want}");
        }
    }
    Ok(got)
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_flag_or_the_path() {
        assert_eq!(
            upload_name(Path::new("/tmp/data.csv"), None).unwrap(),
            "data.csv"
        );
        assert_eq!(
            upload_name(Path::new("data.csv"), Some("x y.csv")).unwrap(),
            "x y.csv"
        );
        assert!(upload_name(Path::new("/"), None).is_err());
        assert!(upload_name(Path::new(".."), None).is_err());
    }

    #[test]
    fn etags_name_a_sha256() {
        let h = "ab".repeat(32);
        assert_eq!(etag_sha256(&h), Some(h.clone()));
        assert_eq!(etag_sha256(&format!("\"{h}\"")), Some(h.clone()));
        assert_eq!(
            etag_sha256(&format!("W/\"{}\"", h.to_uppercase())),
            Some(h.clone())
        );
        assert_eq!(etag_sha256(&format!("\"sha256:{h}\"")), Some(h));
        assert_eq!(etag_sha256("\"abc\""), None);
        assert_eq!(etag_sha256(&"zz".repeat(32)), None);
    }

    #[test]
    fn a_directory_target_takes_the_stored_name() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            target_path(dir.path(), Some("a.csv")).unwrap(),
            dir.path().join("a.csv")
        );
        for bad in ["", "..", "a/b", "."] {
            assert!(target_path(dir.path(), Some(bad)).is_err(), "{bad:?}");
        }
        let f = dir.path().join("out.bin");
        assert_eq!(target_path(&f, None).unwrap(), f);
    }

    #[tokio::test]
    async fn a_failed_download_leaves_nothing() {
        // Nothing listens on port 9 of localhost: the fetch fails before
        // any temporary file is made, and the target never appears.
        let dir = tempfile::tempdir().unwrap();
        let api = Api::new("http://127.0.0.1:9", "wk_test").unwrap();
        let target = dir.path().join("out.bin");
        let e = download(&api, "file_1", Some(&target), false)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("WARDEN_URL"), "{e}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn hex_is_lowercase() {
        assert_eq!(hex(&[0x00, 0xab, 0xff]), "00abff");
    }

    #[tokio::test]
    async fn uploads_refuse_directories() {
        let dir = tempfile::tempdir().unwrap();
        let api = Api::new("http://127.0.0.1:9", "wk_test").unwrap();
        let e = upload(&api, dir.path(), Some("x"), true).await.unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
    }
}
