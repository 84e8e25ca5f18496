//! Image names a request may use: `host`, or a directory built by
//! `scripts/build-image.sh` under the configured images directory, which
//! carries a `.warden-image.json` saying what it is.

use serde::Serialize;
use std::path::Path;
use warden_spec::Image;

/// What a job's manifest records about its image.
#[derive(Debug, Clone, Serialize)]
pub struct ImageIdentity {
    pub name: String,
    /// `host`, or the image's content digest from its build record.
    pub content_sha256: Option<String>,
    pub built_at: Option<String>,
}

/// Whether `name` can name an image (operator's or tenant's).
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && !name.starts_with('-')
}

/// Whether `name` is the operator's (`host` or a built image directory),
/// checked without listing the others.
pub fn is_operator(images_dir: &Path, name: &str) -> bool {
    name == "host"
        || (valid_name(name) && images_dir.join(name).join(".warden-image.json").is_file())
}

/// Resolves an image name to what the runtime starts, and its identity.
pub fn resolve(images_dir: &Path, name: &str) -> crate::service::Result<(Image, ImageIdentity)> {
    use crate::service::Error;
    if name == "host" {
        return Ok((
            Image::Host,
            ImageIdentity {
                name: "host".into(),
                content_sha256: None,
                built_at: None,
            },
        ));
    }
    let unknown = || {
        Error::invalid(format!(
            "unknown image {name:?} (available: host{})",
            available(images_dir)
                .iter()
                .map(|n| format!(", {n}"))
                .collect::<String>()
        ))
    };
    if !valid_name(name) {
        return Err(unknown());
    }
    let dir = images_dir.join(name);
    let record = std::fs::read(dir.join(".warden-image.json")).map_err(|_| unknown())?;
    let meta: serde_json::Value = serde_json::from_slice(&record)
        .map_err(|e| Error::internal("reading the image record", e))?;
    let path = dir
        .canonicalize()
        .map_err(|e| Error::internal("resolving the image", e))?;
    Ok((
        Image::Dir(path.to_string_lossy().into_owned()),
        ImageIdentity {
            name: name.to_string(),
            content_sha256: meta["content_sha256"].as_str().map(str::to_string),
            built_at: meta["built_at"].as_str().map(str::to_string),
        },
    ))
}

/// `name=version` of an operator's image's Debian packages, from its
/// build record (none for `host` or an unreadable record).
pub fn packages(images_dir: &Path, name: &str) -> Vec<String> {
    if name == "host" || !valid_name(name) {
        return Vec::new();
    }
    let Ok(record) = std::fs::read(images_dir.join(name).join(".warden-image.json")) else {
        return Vec::new();
    };
    let meta: serde_json::Value = serde_json::from_slice(&record).unwrap_or_default();
    meta["packages"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default()
}

/// Names of the built images.
pub fn available(images_dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(images_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join(".warden-image.json").is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| valid_name(n))
        .collect();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_only_to_built_images() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("py")).unwrap();
        std::fs::write(
            dir.path().join("py/.warden-image.json"),
            r#"{"content_sha256": "abc", "built_at": "2026-11-23T00:00:00Z"}"#,
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("half-built")).unwrap();
        let (img, id) = resolve(dir.path(), "py").unwrap();
        assert!(matches!(img, Image::Dir(p) if p.ends_with("/py")));
        assert_eq!(id.content_sha256.as_deref(), Some("abc"));
        assert!(matches!(
            resolve(dir.path(), "host").unwrap().0,
            Image::Host
        ));
        for bad in ["half-built", "../py", "py/..", "", "Py", "nope"] {
            let e = resolve(dir.path(), bad).unwrap_err();
            assert_eq!(e.code(), "bad_request", "{bad}");
        }
        assert_eq!(available(dir.path()), ["py"]);
        for (name, operator) in [
            ("py", true),
            ("host", true),
            ("half-built", false),
            ("../py", false),
        ] {
            assert_eq!(is_operator(dir.path(), name), operator, "{name}");
        }
    }
}
