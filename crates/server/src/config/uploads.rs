//! `[uploads]`: the checks every upload passes before it is recorded (see
//! `checks`).

use anyhow::Result;
use serde::Deserialize;
use std::fmt;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UploadsConfig {
    /// Types (by name, see `checks::TYPES`) a tenant accepts unless an admin
    /// set its own list.
    pub allowed_types: Vec<String>,
    /// Zip-based uploads (XLSX, DOCX, zip) with more entries are refused...
    pub max_zip_entries: u64,
    /// ... or that would inflate to more than this in all...
    pub max_zip_uncompressed_bytes: u64,
    /// ... or with an entry that inflates more than this many times its
    /// compressed size (real office files stay near 10:1; a bomb is ~1000:1).
    pub max_zip_ratio: u64,
    /// Entries inflating to less than this are exempt from the ratio (small
    /// repetitive XML parts compress well and can do no harm).
    pub zip_ratio_min_bytes: u64,
    /// A scanner run on each upload, `{path}` replaced by the stored file's
    /// path: exit 0 is clean, 1 is flagged (refused); empty: no scanner.
    pub scanner: Vec<String>,
    pub scanner_timeout_secs: u64,
    /// A scanner that fails (other exit codes, timeout, not runnable) refuses
    /// the upload (503) when true; when false the file is kept with the
    /// error as its verdict.
    pub scanner_fail_closed: bool,
}

impl Default for UploadsConfig {
    fn default() -> Self {
        UploadsConfig {
            allowed_types: crate::checks::kinds::DEFAULT_ALLOWED
                .iter()
                .map(|t| t.to_string())
                .collect(),
            max_zip_entries: 10_000,
            max_zip_uncompressed_bytes: 1 << 30,
            max_zip_ratio: 100,
            zip_ratio_min_bytes: 1 << 20,
            scanner: Vec::new(),
            scanner_timeout_secs: 60,
            scanner_fail_closed: true,
        }
    }
}

impl UploadsConfig {
    /// `WARDEN_UPLOADS_*` over the file's values.
    pub(super) fn apply_env(
        &mut self,
        get: &impl Fn(&str) -> Option<String>,
        num: &impl Fn(&str) -> Result<Option<u64>>,
    ) -> Result<()> {
        if let Some(v) = get("WARDEN_UPLOADS_ALLOWED_TYPES") {
            self.allowed_types = v
                .split(',')
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
                .collect();
        }
        if let Some(v) = num("WARDEN_UPLOADS_MAX_ZIP_ENTRIES")? {
            self.max_zip_entries = v;
        }
        if let Some(v) = num("WARDEN_UPLOADS_MAX_ZIP_UNCOMPRESSED_BYTES")? {
            self.max_zip_uncompressed_bytes = v;
        }
        if let Some(v) = num("WARDEN_UPLOADS_MAX_ZIP_RATIO")? {
            self.max_zip_ratio = v.max(1);
        }
        if let Some(v) = get("WARDEN_UPLOADS_SCANNER") {
            self.scanner = super::command_from_env("WARDEN_UPLOADS_SCANNER", &v)?;
        }
        if let Some(v) = num("WARDEN_UPLOADS_SCANNER_TIMEOUT_SECS")? {
            self.scanner_timeout_secs = v.max(1);
        }
        if let Some(v) = get("WARDEN_UPLOADS_SCANNER_FAIL_CLOSED") {
            self.scanner_fail_closed = !(v == "0" || v == "false");
        }
        Ok(())
    }
}

/// The section as TOML.
impl fmt::Display for UploadsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "[uploads]")?;
        writeln!(f, "allowed_types = {:?}", self.allowed_types)?;
        writeln!(f, "max_zip_entries = {}", self.max_zip_entries)?;
        writeln!(
            f,
            "max_zip_uncompressed_bytes = {}",
            self.max_zip_uncompressed_bytes
        )?;
        writeln!(f, "max_zip_ratio = {}", self.max_zip_ratio)?;
        writeln!(f, "zip_ratio_min_bytes = {}", self.zip_ratio_min_bytes)?;
        writeln!(f, "scanner = {:?}", self.scanner)?;
        writeln!(f, "scanner_timeout_secs = {}", self.scanner_timeout_secs)?;
        write!(f, "scanner_fail_closed = {}", self.scanner_fail_closed)
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;

    #[test]
    fn file_then_env() {
        let mut cfg: Config = toml::from_str(
            "[uploads]\nallowed_types = [\"csv\"]\nscanner = [\"clamdscan\", \"{path}\"]\n",
        )
        .unwrap();
        assert_eq!(cfg.uploads.scanner, ["clamdscan", "{path}"]);
        assert_eq!(cfg.uploads.max_zip_entries, 10_000);
        let env = |k: &str| match k {
            "WARDEN_UPLOADS_ALLOWED_TYPES" => Some("pdf, csv".to_string()),
            "WARDEN_UPLOADS_SCANNER" => Some(r#"["/opt/my scanner", "{path}"]"#.to_string()),
            "WARDEN_UPLOADS_SCANNER_FAIL_CLOSED" => Some("false".to_string()),
            _ => None,
        };
        cfg.apply_env(env).unwrap();
        let u = &cfg.uploads;
        assert_eq!(u.allowed_types, ["pdf", "csv"]);
        assert_eq!(u.scanner, ["/opt/my scanner", "{path}"]);
        assert!(!u.scanner_fail_closed);
        assert!(cfg
            .to_string()
            .contains("\n[uploads]\nallowed_types = [\"pdf\", \"csv\"]\n"));
    }
}
