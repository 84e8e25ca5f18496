//! How a configuration knob is declared: once, with its type, its default,
//! its documentation and (if it has one) its environment variable. The
//! [`knobs!`] macro turns that one declaration into the section's struct
//! (read from TOML by serde, shown as TOML by serde), its `Default`, and
//! its environment overlay. What a section checks or clamps after every
//! source is applied is its own hand-written `normalize`.

use std::net::SocketAddr;
use std::path::PathBuf;

/// A value an environment variable can set: the variable's text parsed
/// as the knob's type.
pub(crate) trait FromEnv: Sized {
    fn from_env(v: &str) -> Result<Self, String>;
}

macro_rules! from_str_env {
    ($($t:ty),*) => {$(
        impl FromEnv for $t {
            fn from_env(v: &str) -> Result<Self, String> {
                v.trim().parse().map_err(|e| format!("{e}"))
            }
        }
    )*};
}
from_str_env!(u32, u64, usize, SocketAddr);

impl FromEnv for String {
    fn from_env(v: &str) -> Result<Self, String> {
        Ok(v.to_string())
    }
}

impl FromEnv for PathBuf {
    fn from_env(v: &str) -> Result<Self, String> {
        Ok(v.into())
    }
}

/// `1`, `true`, `yes`, `on` or `0`, `false`, `no`, `off`; anything else is
/// refused rather than read as one or the other.
impl FromEnv for bool {
    fn from_env(v: &str) -> Result<Self, String> {
        match v.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" => Ok(false),
            _ => Err("expected 1, true, yes, on or 0, false, no, off".into()),
        }
    }
}

/// Empty means unset (the default), as if the variable were not there.
impl<T: FromEnv> FromEnv for Option<T> {
    fn from_env(v: &str) -> Result<Self, String> {
        if v.trim().is_empty() {
            Ok(None)
        } else {
            T::from_env(v).map(Some)
        }
    }
}

/// A JSON array keeps items with spaces or commas intact (a program path
/// with a space); otherwise items are separated by commas if there are
/// any (`pdf, csv`), else by whitespace (`clamdscan --fdpass {path}`).
impl FromEnv for Vec<String> {
    fn from_env(v: &str) -> Result<Self, String> {
        if v.trim_start().starts_with('[') {
            return serde_json::from_str(v).map_err(|e| format!("a JSON array of strings: {e}"));
        }
        let items: Vec<String> = if v.contains(',') {
            v.split(',').map(|s| s.trim().to_string()).collect()
        } else {
            v.split_whitespace().map(str::to_string).collect()
        };
        Ok(items.into_iter().filter(|s| !s.is_empty()).collect())
    }
}

/// Declares a configuration section. Each knob is
/// `pub name: Type = default, env "WARDEN_NAME";` (or without `env` when
/// no variable sets it); a nested section is `pub name: Type = default,
/// [section];` and gets the environment overlay of its own knobs.
macro_rules! knobs {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(
                $(#[$fmeta:meta])*
                pub $field:ident : $ty:ty = $default:expr
                    $(, env $env:literal)? $(, [$section:ident])? ;
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, serde::Deserialize, serde::Serialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty, )*
        }

        impl Default for $name {
            fn default() -> Self {
                $name { $( $field: $default, )* }
            }
        }

        impl $name {
            /// Every environment variable of this section (nested sections
            /// not included), in declaration order.
            #[allow(dead_code)]
            pub(crate) const ENV: &'static [&'static str] = &[$($($env,)?)*];

            /// Sets each knob whose variable `get` has; a value that does
            /// not parse as the knob's type is an error naming the variable.
            pub(crate) fn overlay_env(
                &mut self,
                get: &dyn Fn(&str) -> Option<String>,
            ) -> anyhow::Result<()> {
                // A section may have no variables at all.
                let _ = get;
                $(
                    $(
                        if let Some(v) = get($env) {
                            self.$field = <$ty as $crate::config::knobs::FromEnv>::from_env(&v)
                                .map_err(|e| anyhow::anyhow!("{}={v:?}: {e}", $env))?;
                        }
                    )?
                    $(
                        let _ = stringify!($section);
                        self.$field.overlay_env(get)?;
                    )?
                )*
                Ok(())
            }
        }
    };
}
pub(crate) use knobs;

/// Shows a secret as `"****"` (only whether it is set, never its value).
pub(crate) fn masked<S: serde::Serializer>(v: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(_) => s.serialize_str("****"),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_take_json_commas_or_words() {
        let l = |v: &str| Vec::<String>::from_env(v).unwrap();
        assert_eq!(
            l(r#"["/opt/my scanner", "{path}"]"#),
            ["/opt/my scanner", "{path}"]
        );
        assert_eq!(l("pdf, csv,"), ["pdf", "csv"]);
        assert_eq!(
            l("clamdscan --fdpass {path}"),
            ["clamdscan", "--fdpass", "{path}"]
        );
        assert!(l("").is_empty());
        assert!(Vec::<String>::from_env("[1, 2]").is_err());
    }

    #[test]
    fn flags_are_spelled_out_or_refused() {
        assert!(bool::from_env("1").unwrap() && bool::from_env("True").unwrap());
        assert!(!bool::from_env("0").unwrap() && !bool::from_env("off").unwrap());
        assert!(bool::from_env("maybe").is_err());
        assert_eq!(Option::<u64>::from_env(" ").unwrap(), None);
        assert!(u64::from_env("12x").is_err());
    }
}
