//! `[uploads]`: the checks every upload passes before it is recorded (see
//! `checks`).

use super::knobs::knobs;

knobs! {
    #[derive(Debug)]
    pub struct UploadsConfig {
        /// Types (by name, see `checks::TYPES`) a tenant accepts unless an
        /// admin set its own list.
        pub allowed_types: Vec<String> = crate::checks::kinds::DEFAULT_ALLOWED
            .iter()
            .map(|t| t.to_string())
            .collect(), env "WARDEN_UPLOADS_ALLOWED_TYPES";
        /// Zip-based uploads (XLSX, DOCX, zip) with more entries are
        /// refused...
        pub max_zip_entries: u64 = 10_000, env "WARDEN_UPLOADS_MAX_ZIP_ENTRIES";
        /// ... or that would inflate to more than this in all...
        pub max_zip_uncompressed_bytes: u64 = 1 << 30,
            env "WARDEN_UPLOADS_MAX_ZIP_UNCOMPRESSED_BYTES";
        /// ... or with an entry that inflates more than this many times its
        /// compressed size (at least 1; real office files stay near 10:1,
        /// a bomb is ~1000:1).
        pub max_zip_ratio: u64 = 100, env "WARDEN_UPLOADS_MAX_ZIP_RATIO";
        /// Entries inflating to less than this are exempt from the ratio
        /// (small repetitive XML parts compress well and can do no harm).
        pub zip_ratio_min_bytes: u64 = 1 << 20, env "WARDEN_UPLOADS_ZIP_RATIO_MIN_BYTES";
        /// A scanner run on each upload, `{path}` replaced by the stored
        /// file's path: exit 0 is clean, 1 is flagged (refused); empty: no
        /// scanner.
        pub scanner: Vec<String> = Vec::new(), env "WARDEN_UPLOADS_SCANNER";
        /// Seconds a scan may take (at least 1).
        pub scanner_timeout_secs: u64 = 60, env "WARDEN_UPLOADS_SCANNER_TIMEOUT_SECS";
        /// A scanner that fails (other exit codes, timeout, not runnable)
        /// refuses the upload (503) when true; when false the file is kept
        /// with the error as its verdict.
        pub scanner_fail_closed: bool = true, env "WARDEN_UPLOADS_SCANNER_FAIL_CLOSED";
    }
}

impl UploadsConfig {
    /// Ratios and timeouts of at least one; known type names only.
    pub(super) fn normalize(&mut self) -> anyhow::Result<()> {
        self.max_zip_ratio = self.max_zip_ratio.max(1);
        self.scanner_timeout_secs = self.scanner_timeout_secs.max(1);
        self.allowed_types = crate::checks::kinds::known_types(&self.allowed_types)
            .map_err(|e| anyhow::anyhow!("[uploads] allowed_types: {e}"))?;
        Ok(())
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
