//! JSON shapes of `/v1/images`: a build's request (a base and its steps),
//! the events its answer streams, and an image as shown.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /v1/images`: build (or rebuild) the caller's image `name` from
/// `base` and `steps`. A step whose key (everything it depends on) was
/// built before is reused, not run again.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BuildImage {
    /// The image's name (letters, digits, `-`, `_`, `.`; not an
    /// operator's image's name).
    pub name: String,
    /// An operator's directory image (`python-data`, ...) or another of
    /// the caller's images.
    pub base: String,
    /// Run in order, each in a fresh native sandbox on the image so far,
    /// as its root, with egress to the operator's package indexes only.
    pub steps: Vec<Step>,
}

/// One step: exactly one of its fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// Debian packages, installed with `apt-get install
    /// --no-install-recommends` (the base must have apt, as `python-data`
    /// has).
    Apt(Vec<String>),
    /// Python requirements (`name`, `name==1.2`, ...), installed with
    /// `pip install` from the operator's index.
    Pip(Vec<String>),
    /// One of the caller's uploaded files, put at `path`.
    File(FileStep),
    /// A shell command (`sh -c`), run as the sandbox's root.
    Run(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FileStep {
    /// An uploaded file's id (`POST /v1/files`).
    pub file_id: String,
    /// An absolute path in the image.
    pub path: String,
    /// Permission bits (default 0644).
    #[serde(default)]
    pub mode: Option<u32>,
}

/// One line of a build's answer (`application/x-ndjson`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum BuildEvent {
    /// Step `index` (from 1) of `of` begins; `cached`: its layer was built
    /// before and is reused.
    Step {
        index: usize,
        of: usize,
        cached: bool,
        key: String,
        /// What the step does, in a line.
        summary: String,
    },
    /// Output of the running step.
    Output { stream: String, data: String },
    /// The image is built.
    Done {
        image: ImageInfo,
        /// Steps run (not reused) and the build's wall time.
        steps_run: usize,
        elapsed_ms: u64,
    },
    /// The build failed (its image, if it existed, is unchanged).
    Error { code: String, message: String },
}

/// An image a caller may start sandboxes from.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ImageInfo {
    pub name: String,
    /// `operator` (built on the host by the operator, shared by every
    /// tenant) or `tenant` (the caller's own).
    pub owner: String,
    /// The image it was built on (tenant images).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    /// Its content digest: the operator's image's, or for a tenant's the
    /// SHA-256 over its base's digest and each layer's every path, mode,
    /// content digest and link target.
    pub content_sha256: Option<String>,
    pub built_at: Option<String>,
    /// `name=version` of its Debian and Python packages.
    pub packages: Vec<String>,
    /// Its steps as asked (tenant images).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub steps: Option<serde_json::Value>,
    /// Its layers' keys, first step first (tenant images).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub layers: Vec<String>,
}

impl Step {
    /// The step in a line, for progress.
    pub fn summary(&self) -> String {
        match self {
            Step::Apt(p) => format!("apt {}", p.join(" ")),
            Step::Pip(p) => format!("pip {}", p.join(" ")),
            Step::File(f) => format!("file {} -> {}", f.file_id, f.path),
            Step::Run(c) => {
                let line = c.lines().next().unwrap_or_default();
                let mut s: String = line.chars().take(80).collect();
                if s.len() < c.len() {
                    s.push_str(" ...");
                }
                format!("run {s}")
            }
        }
    }
}
