//! `warden review outputs ID --download DIR`: every output of a job into
//! DIR/<path>, with one progress bar over the total bytes. Each file lands
//! in a temporary file beside its target and is renamed into place only
//! once its size and SHA-256 match the listing, so a failed or corrupt
//! download leaves no file behind (files already done stay).

use crate::client::http::Api;
use anyhow::{anyhow, bail, Context, Result};
use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use reqwest::Method;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::io::IsTerminal;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;

/// One output to fetch: its path on the server, where it goes, what it
/// must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub path: String,
    pub target: PathBuf,
    pub size: u64,
    pub sha256: String,
}

/// Checks an output's path and gives its place under `dir`: relative,
/// `/`-separated, with no empty, `.` or `..` components and no NUL. The
/// server checks the same; a client does not write where a server says
/// without looking.
pub fn local_path(dir: &Path, path: &str) -> Result<PathBuf> {
    if path.is_empty() {
        bail!("the server listed an output with an empty path");
    }
    if path.starts_with('/') {
        bail!("refusing the absolute output path {path:?}");
    }
    if path.contains('\0') {
        bail!("refusing the output path {path:?}: it holds a NUL byte");
    }
    let mut target = dir.to_path_buf();
    for c in path.split('/') {
        match c {
            "" => bail!("refusing the output path {path:?}: it has an empty component"),
            "." | ".." => bail!("refusing the output path {path:?}: it has a {c:?} component"),
            c => target.push(c),
        }
    }
    Ok(target)
}

/// Checks the whole listing before anything is written: every path (see
/// [`local_path`]), a size and a SHA-256 for each, no path twice, and no
/// path that is both a file and a directory of another.
pub fn plan(items: &[Value], dir: &Path) -> Result<Vec<Planned>> {
    let mut planned = Vec::with_capacity(items.len());
    let mut files = HashSet::new();
    for o in items {
        let path = o
            .get("path")
            .and_then(Value::as_str)
            .context("unexpected answer from the server: an output without a path")?;
        let target = local_path(dir, path)?;
        let size = o
            .get("size")
            .and_then(Value::as_u64)
            .with_context(|| format!("unexpected answer from the server: no size for {path:?}"))?;
        let sha256 = o
            .get("sha256")
            .and_then(Value::as_str)
            .filter(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
            .with_context(|| {
                format!("unexpected answer from the server: no valid sha256 for {path:?}")
            })?
            .to_ascii_lowercase();
        if !files.insert(path.to_string()) {
            bail!("the server listed the output {path:?} twice");
        }
        planned.push(Planned {
            path: path.to_string(),
            target,
            size,
            sha256,
        });
    }
    for p in &planned {
        let mut prefix = String::new();
        for c in p.path.split('/') {
            if files.contains(&prefix) {
                bail!(
                    "the outputs {prefix:?} and {:?} cannot both be written: one is a file, \
                     the other needs it to be a directory",
                    p.path
                );
            }
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(c);
        }
    }
    Ok(planned)
}

/// Downloads every output in `items` into `dir`; returns where each went.
pub async fn all(
    api: &Api,
    id: &str,
    items: &[Value],
    dir: &Path,
    quiet: bool,
) -> Result<Vec<PathBuf>> {
    let planned = plan(items, dir)?;
    if planned.is_empty() {
        return Ok(Vec::new());
    }
    for p in &planned {
        preflight(dir, &p.target)?;
    }
    tokio::fs::create_dir_all(dir)
        .await
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let total = planned.iter().map(|p| p.size).sum();
    let bar = progress(total, quiet);
    let mut done = Vec::with_capacity(planned.len());
    let mut result = Ok(());
    for p in &planned {
        bar.set_message(p.path.clone());
        if let Err(e) = one(api, id, dir, p, &bar).await {
            result = Err(e.context(format!("downloading {}", p.path)));
            break;
        }
        done.push(p.target.clone());
    }
    bar.finish_and_clear();
    result.map(|_| done)
}

/// A byte progress bar on stderr naming the file being fetched, hidden when
/// stderr is not a terminal or when `quiet`.
fn progress(total: u64, quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{bytes}/{total_bytes} [{bar:30}] {binary_bytes_per_sec} ETA {eta} {wide_msg}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Makes the directories between `dir` and `target`, refusing to go
/// through a symbolic link (which could lead out of `dir`).
pub fn make_parents(dir: &Path, target: &Path) -> Result<PathBuf> {
    parents(dir, target, true)
}

/// Looks, before anything is downloaded, for what would stop `target`
/// from being written: a symbolic link or a file where a directory is
/// needed, or a directory where the file goes.
pub fn preflight(dir: &Path, target: &Path) -> Result<()> {
    parents(dir, target, false)?;
    if std::fs::symlink_metadata(target).is_ok_and(|m| m.is_dir()) {
        bail!("{} exists and is a directory", target.display());
    }
    Ok(())
}

/// Walks the directories between `dir` and `target`; a missing one is made
/// when `create`, else ends the walk.
fn parents(dir: &Path, target: &Path, create: bool) -> Result<PathBuf> {
    let parent = target
        .parent()
        .context("an output path without a parent directory")?;
    let rel = parent
        .strip_prefix(dir)
        .context("an output path outside the download directory")?;
    let mut at = dir.to_path_buf();
    for c in rel.components() {
        at.push(c);
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_symlink() => {
                bail!(
                    "{} is a symbolic link; not writing through it",
                    at.display()
                )
            }
            Ok(m) if m.is_dir() => {}
            Ok(_) => bail!("{} exists and is not a directory", at.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !create => break,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::create_dir(&at)
                .with_context(|| format!("cannot create {}", at.display()))?,
            Err(e) => return Err(anyhow!(e).context(format!("cannot look at {}", at.display()))),
        }
    }
    Ok(parent.to_path_buf())
}

/// Fetches one output into place.
async fn one(api: &Api, id: &str, dir: &Path, p: &Planned, bar: &ProgressBar) -> Result<()> {
    let parent = make_parents(dir, &p.target)?;
    let mut segments = vec!["v1", "reviews", id, "outputs"];
    segments.extend(p.path.split('/'));
    let resp = api.send(api.request(Method::GET, &segments)?).await?;
    let body = resp
        .bytes_stream()
        .map(|c| c.map_err(|e| anyhow!("the download broke off: {}", api.transport(e))));
    save(body, &parent, p, bar).await
}

/// Writes `body` to a temporary file in `parent`, checks its size and
/// SHA-256 against the listing, and only then renames it to the target; on
/// any failure the temporary file is removed.
async fn save<S, B>(mut body: S, parent: &Path, p: &Planned, bar: &ProgressBar) -> Result<()>
where
    S: futures_util::Stream<Item = Result<B>> + Unpin,
    B: AsRef<[u8]>,
{
    // Created with 0666 less the umask, as a plain create would be.
    let tmp = tempfile::Builder::new()
        .prefix(".warden-download-")
        .permissions(std::fs::Permissions::from_mode(0o666))
        .tempfile_in(parent)
        .with_context(|| format!("cannot create a temporary file in {}", parent.display()))?;
    let mut file = tokio::fs::File::from_std(
        tmp.as_file()
            .try_clone()
            .context("cannot reopen the temporary file")?,
    );
    let mut hasher = Sha256::new();
    let mut got = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        let chunk = chunk.as_ref();
        got += chunk.len() as u64;
        if got > p.size {
            bail!("the server sent more than the listed {} bytes", p.size);
        }
        hasher.update(chunk);
        file.write_all(chunk)
            .await
            .with_context(|| format!("writing {}", p.target.display()))?;
        bar.inc(chunk.len() as u64);
    }
    if got != p.size {
        bail!("the download broke off: {got} of {} bytes arrived", p.size);
    }
    let have = hex(&hasher.finalize());
    if have != p.sha256 {
        bail!(
            "the download is corrupt: its SHA-256 is {have}, the listing says {}",
            p.sha256
        );
    }
    file.flush().await?;
    file.sync_all()
        .await
        .with_context(|| format!("writing {}", p.target.display()))?;
    drop(file);
    tmp.persist(&p.target)
        .map_err(|e| anyhow!(e.error))
        .with_context(|| format!("cannot move the download to {}", p.target.display()))?;
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn out(path: &str) -> Value {
        json!({"path": path, "size": 3, "sha256": "ab".repeat(32)})
    }

    #[test]
    fn output_paths_stay_under_the_directory() {
        let dir = Path::new("/tmp/d");
        assert_eq!(local_path(dir, "a.txt").unwrap(), dir.join("a.txt"));
        assert_eq!(
            local_path(dir, "charts/x y.png").unwrap(),
            dir.join("charts").join("x y.png")
        );
        assert_eq!(local_path(dir, "..a/b..").unwrap(), dir.join("..a/b.."));
        for bad in [
            "",
            "/etc/passwd",
            "..",
            "../x",
            "a/../../x",
            "a/..",
            "./a",
            "a/./b",
            "a//b",
            "a/",
            "a\0b",
        ] {
            assert!(local_path(dir, bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn listings_are_checked_before_anything_is_written() {
        let dir = Path::new("/tmp/d");
        let p = plan(&[out("a"), out("b/c")], dir).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[1].target, dir.join("b").join("c"));
        assert_eq!(p[1].sha256, "ab".repeat(32));
        let upper = json!({"path": "u", "size": 0, "sha256": "AB".repeat(32)});
        assert_eq!(plan(&[upper], dir).unwrap()[0].sha256, "ab".repeat(32));
        for bad in [
            vec![out("a"), out("a")],
            vec![out("a"), out("a/b")],
            vec![out("x/y/z"), out("x/y")],
            vec![out("../a")],
            vec![json!({"path": "a", "size": 3})],
            vec![json!({"path": "a", "size": 3, "sha256": "abc"})],
            vec![json!({"path": "a", "sha256": "ab".repeat(32)})],
            vec![json!({"size": 3, "sha256": "ab".repeat(32)})],
        ] {
            assert!(plan(&bad, dir).is_err(), "{bad:?}");
        }
        // Siblings that share a prefix are fine.
        assert!(plan(&[out("ab"), out("a/b"), out("abc/d")], dir).is_ok());
    }

    #[test]
    fn parents_are_made_without_following_links() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let target = dir.join("a").join("b").join("f");
        assert_eq!(make_parents(dir, &target).unwrap(), dir.join("a").join("b"));
        assert!(dir.join("a/b").is_dir());
        std::os::unix::fs::symlink("/", dir.join("link")).unwrap();
        assert!(make_parents(dir, &dir.join("link").join("etc").join("f")).is_err());
        std::fs::write(dir.join("file"), b"x").unwrap();
        assert!(make_parents(dir, &dir.join("file").join("f")).is_err());
        assert_eq!(make_parents(dir, &dir.join("top")).unwrap(), dir);
        // Checked up front without making anything.
        assert!(preflight(dir, &dir.join("new").join("deeper").join("f")).is_ok());
        assert!(!dir.join("new").exists());
        assert!(preflight(dir, &dir.join("link").join("f")).is_err());
        assert!(preflight(dir, &dir.join("file").join("f")).is_err());
        assert!(
            preflight(dir, &dir.join("a")).is_err(),
            "a directory is in the way"
        );
        assert!(
            preflight(dir, &dir.join("file")).is_ok(),
            "a file is replaced"
        );
    }

    #[tokio::test]
    async fn a_failed_download_leaves_nothing() {
        // Nothing listens on port 9 of localhost: the fetch fails before
        // any temporary file is made.
        let tmp = tempfile::tempdir().unwrap();
        let api = Api::new("http://127.0.0.1:9", "wk_test").unwrap();
        let e = all(&api, "rev_1", &[out("sub/a")], tmp.path(), true)
            .await
            .unwrap_err();
        assert!(format!("{e:#}").contains("WARDEN_URL"), "{e:#}");
        assert_eq!(
            std::fs::read_dir(tmp.path().join("sub")).unwrap().count(),
            0
        );
    }

    #[test]
    fn hex_is_lowercase() {
        assert_eq!(hex(&[0x00, 0xab, 0xff]), "00abff");
    }

    fn planned(dir: &Path, body: &[u8]) -> Planned {
        Planned {
            path: "f.txt".into(),
            target: dir.join("f.txt"),
            size: body.len() as u64,
            sha256: hex(&Sha256::digest(body)),
        }
    }

    fn chunks(
        parts: &[&'static [u8]],
    ) -> impl futures_util::Stream<Item = Result<&'static [u8]>> + Unpin {
        futures_util::stream::iter(parts.iter().map(|p| Ok(*p)).collect::<Vec<_>>())
    }

    #[tokio::test]
    async fn checked_bytes_land_in_place() {
        let tmp = tempfile::tempdir().unwrap();
        let p = planned(tmp.path(), b"hello world");
        let bar = ProgressBar::hidden();
        save(chunks(&[b"hello ", b"world"]), tmp.path(), &p, &bar)
            .await
            .unwrap();
        assert_eq!(std::fs::read(&p.target).unwrap(), b"hello world");
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
        // A second download replaces the file.
        let p = planned(tmp.path(), b"new");
        save(chunks(&[b"new"]), tmp.path(), &p, &bar).await.unwrap();
        assert_eq!(std::fs::read(&p.target).unwrap(), b"new");
    }

    #[tokio::test]
    async fn bad_bytes_leave_no_file() {
        let tmp = tempfile::tempdir().unwrap();
        let bar = ProgressBar::hidden();
        let p = planned(tmp.path(), b"hello world");
        let cases: [&[&'static [u8]]; 3] = [
            &[b"hello ", b"wOrld"],       // corrupt
            &[b"hello"],                  // short
            &[b"hello ", b"world", b"!"], // long
        ];
        for parts in cases {
            let e = save(chunks(parts), tmp.path(), &p, &bar)
                .await
                .unwrap_err()
                .to_string();
            assert!(e.contains("corrupt") || e.contains("bytes"), "{e}");
            assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0, "{e}");
        }
        let broken = futures_util::stream::iter(vec![
            Ok(&b"hel"[..]),
            Err(anyhow!("the download broke off: reset")),
        ]);
        assert!(save(broken, tmp.path(), &p, &bar).await.is_err());
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    }
}
