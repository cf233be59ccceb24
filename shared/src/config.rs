//! Configuration read once from the environment at cold start. A missing or malformed variable
//! stops the function before it handles any event, with the variable's name in the error.

use std::collections::HashMap;
use std::time::Duration;

use crate::image::Severity;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("environment variable {0} is required but not set")]
    Missing(&'static str),
    #[error("environment variable {name} must be {expected}, got `{value}`")]
    Invalid {
        name: &'static str,
        expected: &'static str,
        value: String,
    },
}

/// A view of the environment; tests pass a map instead of touching the process.
pub struct Env {
    vars: HashMap<String, String>,
}

impl Env {
    pub fn from_process() -> Self {
        Env {
            vars: std::env::vars().collect(),
        }
    }

    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Env {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    pub fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.get(name)
            .map(str::to_string)
            .ok_or(ConfigError::Missing(name))
    }

    pub fn flag(&self, name: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.get(name).map(str::to_ascii_lowercase).as_deref() {
            None => Ok(default),
            Some("true" | "1" | "yes") => Ok(true),
            Some("false" | "0" | "no") => Ok(false),
            Some(other) => Err(ConfigError::Invalid {
                name,
                expected: "true or false",
                value: other.to_string(),
            }),
        }
    }

    pub fn number(&self, name: &'static str, default: u64) -> Result<u64, ConfigError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| ConfigError::Invalid {
                name,
                expected: "a whole number",
                value: v.to_string(),
            }),
        }
    }
}

/// Settings of the promote-image function.
#[derive(Debug, Clone, PartialEq)]
pub struct PromoteConfig {
    /// SSM parameter (DataType `aws:ec2:image`) naming the promoted AMI.
    pub pointer_parameter: String,
    pub topic_arn: String,
    pub pipeline_arn: String,
    /// Images whose ARN does not start with this belong to another pipeline.
    pub image_arn_prefix: String,
    pub ledger_table: String,
    /// A finding at or above this severity blocks promotion.
    pub severity_threshold: Severity,
    /// When false, a scan that did not complete (or scanning switched off) does not block.
    pub require_scan: bool,
    pub deprecate_after_days: u32,
    pub dry_run: bool,
    /// How long to wait for SSM to show the new pointer value before failing.
    pub readback_timeout: Duration,
    /// How long an invocation may hold the image claim and the pointer lock; must exceed the
    /// function timeout so that a crashed invocation never blocks the next one for long.
    pub lease: Duration,
}

impl PromoteConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let threshold_raw = env.get("SEVERITY_THRESHOLD").unwrap_or("HIGH").to_string();
        let severity_threshold = match Severity::parse(&threshold_raw) {
            Some(s) if s != Severity::Untriaged => s,
            _ => {
                return Err(ConfigError::Invalid {
                    name: "SEVERITY_THRESHOLD",
                    expected: "one of CRITICAL, HIGH, MEDIUM, LOW, INFORMATIONAL",
                    value: threshold_raw,
                })
            }
        };
        let pointer_parameter = env.required("POINTER_PARAMETER")?;
        if pointer_parameter.starts_with("arn:") {
            return Err(ConfigError::Invalid {
                name: "POINTER_PARAMETER",
                expected: "a parameter name such as /vscode-host/ami/current (not an ARN)",
                value: pointer_parameter,
            });
        }
        let image_arn_prefix = env.required("IMAGE_ARN_PREFIX")?;
        if !image_arn_prefix.contains(":image/") {
            return Err(ConfigError::Invalid {
                name: "IMAGE_ARN_PREFIX",
                expected:
                    "an image ARN prefix like arn:aws:imagebuilder:<region>:<account>:image/<name>/",
                value: image_arn_prefix,
            });
        }
        let deprecate_after_days = env.number("DEPRECATE_AFTER_DAYS", 30)?;
        if deprecate_after_days == 0 || deprecate_after_days > 3650 {
            return Err(ConfigError::Invalid {
                name: "DEPRECATE_AFTER_DAYS",
                expected: "between 1 and 3650 days",
                value: deprecate_after_days.to_string(),
            });
        }

        let lease_seconds = env.number("LEASE_SECONDS", 200)?;
        if lease_seconds < 60 {
            return Err(ConfigError::Invalid {
                name: "LEASE_SECONDS",
                expected: "at least 60 seconds, and longer than the function timeout",
                value: lease_seconds.to_string(),
            });
        }

        Ok(PromoteConfig {
            pointer_parameter,
            topic_arn: env.required("TOPIC_ARN")?,
            pipeline_arn: env.required("PIPELINE_ARN")?,
            image_arn_prefix,
            ledger_table: env.required("LEDGER_TABLE")?,
            severity_threshold,
            require_scan: env.flag("REQUIRE_SCAN", true)?,
            deprecate_after_days: deprecate_after_days as u32,
            dry_run: env.flag("DRY_RUN", false)?,
            readback_timeout: Duration::from_secs(env.number("POINTER_READBACK_SECONDS", 60)?),
            lease: Duration::from_secs(lease_seconds),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Vec<(&'static str, &'static str)> {
        vec![
            ("POINTER_PARAMETER", "/vscode-host/ami/current"),
            ("TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:t"),
            (
                "PIPELINE_ARN",
                "arn:aws:imagebuilder:us-east-1:123456789012:image-pipeline/p",
            ),
            (
                "IMAGE_ARN_PREFIX",
                "arn:aws:imagebuilder:us-east-1:123456789012:image/vscode-host/",
            ),
            ("LEDGER_TABLE", "ledger"),
        ]
    }

    #[test]
    fn defaults_block_at_high_and_require_a_scan() {
        let cfg = PromoteConfig::from_env(&Env::from_pairs(base())).unwrap();
        assert_eq!(cfg.severity_threshold, Severity::High);
        assert!(cfg.require_scan);
        assert!(!cfg.dry_run);
        assert_eq!(cfg.deprecate_after_days, 30);
    }

    #[test]
    fn a_missing_variable_is_named() {
        let vars: Vec<_> = base()
            .into_iter()
            .filter(|(k, _)| *k != "TOPIC_ARN")
            .collect();
        assert_eq!(
            PromoteConfig::from_env(&Env::from_pairs(vars)).unwrap_err(),
            ConfigError::Missing("TOPIC_ARN")
        );
    }

    #[test]
    fn a_bad_threshold_names_the_allowed_values() {
        let mut vars = base();
        vars.push(("SEVERITY_THRESHOLD", "SEVERE"));
        let err = PromoteConfig::from_env(&Env::from_pairs(vars))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("SEVERITY_THRESHOLD") && err.contains("CRITICAL, HIGH"),
            "{err}"
        );
    }

    #[test]
    fn a_lease_too_short_to_cover_an_invocation_is_refused() {
        let mut vars = base();
        vars.push(("LEASE_SECONDS", "0"));
        assert!(matches!(
            PromoteConfig::from_env(&Env::from_pairs(vars)),
            Err(ConfigError::Invalid {
                name: "LEASE_SECONDS",
                ..
            })
        ));
    }

    #[test]
    fn a_flag_that_is_not_boolean_is_refused() {
        let mut vars = base();
        vars.push(("DRY_RUN", "maybe"));
        assert!(matches!(
            PromoteConfig::from_env(&Env::from_pairs(vars)),
            Err(ConfigError::Invalid {
                name: "DRY_RUN",
                ..
            })
        ));
    }
}
