//! What the functions know about an image (an Image Builder build version) and its AMIs,
//! independent of how it was fetched. Adapters fill these values; decisions read them.

use std::cmp::Ordering;
use std::fmt;

/// `x.y.z/build` taken from an image build version ARN; orders builds of one recipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BuildVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
    pub build: u32,
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error(
    "expected an image build version ARN like \
     arn:aws:imagebuilder:<region>:<account>:image/<name>/<x.y.z>/<build>, got `{0}`"
)]
pub struct ArnError(pub String);

impl BuildVersion {
    pub fn from_arn(arn: &str) -> Result<Self, ArnError> {
        let err = || ArnError(arn.to_string());
        let (_, path) = arn.split_once(":image/").ok_or_else(err)?;
        let parts: Vec<&str> = path.split('/').collect();
        let [_name, semver, build] = parts.as_slice() else {
            return Err(err());
        };
        let nums: Vec<u32> = semver
            .split('.')
            .map(|n| n.parse().map_err(|_| err()))
            .collect::<Result<_, _>>()?;
        let [major, minor, patch] = nums.as_slice() else {
            return Err(err());
        };
        Ok(BuildVersion {
            major: *major,
            minor: *minor,
            patch: *patch,
            build: build.parse().map_err(|_| err())?,
        })
    }

    /// A string that sorts like the version; stored in the ledger for conditional writes.
    pub fn sort_key(&self) -> String {
        format!(
            "{:010}.{:010}.{:010}.{:010}",
            self.major, self.minor, self.patch, self.build
        )
    }

    pub fn from_sort_key(key: &str) -> Option<Self> {
        let n: Vec<u32> = key.split('.').filter_map(|p| p.parse().ok()).collect();
        match n.as_slice() {
            [major, minor, patch, build] => Some(BuildVersion {
                major: *major,
                minor: *minor,
                patch: *patch,
                build: *build,
            }),
            _ => None,
        }
    }
}

impl fmt::Display for BuildVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}.{}/{}",
            self.major, self.minor, self.patch, self.build
        )
    }
}

/// Inspector severities in increasing order. `Untriaged` means the vendor has not rated the
/// vulnerability yet; it never blocks on its own but is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Severity {
    Untriaged,
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const BLOCKING_ORDER: [Severity; 5] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Informational,
    ];

    /// Case-insensitive; Image Builder returns severity as a plain string.
    pub fn parse(value: &str) -> Option<Self> {
        match value.trim().to_ascii_uppercase().as_str() {
            "CRITICAL" => Some(Severity::Critical),
            "HIGH" => Some(Severity::High),
            "MEDIUM" => Some(Severity::Medium),
            "LOW" => Some(Severity::Low),
            "INFORMATIONAL" => Some(Severity::Informational),
            "UNTRIAGED" => Some(Severity::Untriaged),
            _ => None,
        }
    }

    fn rank(self) -> u8 {
        match self {
            Severity::Untriaged => 0,
            Severity::Informational => 1,
            Severity::Low => 2,
            Severity::Medium => 3,
            Severity::High => 4,
            Severity::Critical => 5,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Untriaged => "UNTRIAGED",
            Severity::Informational => "INFORMATIONAL",
            Severity::Low => "LOW",
            Severity::Medium => "MEDIUM",
            Severity::High => "HIGH",
            Severity::Critical => "CRITICAL",
        }
    }
}

impl PartialOrd for Severity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Severity {
    fn cmp(&self, other: &Self) -> Ordering {
        self.rank().cmp(&other.rank())
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Counts of scan findings by severity; severities Image Builder did not name go to `unknown`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FindingCounts {
    pub critical: u32,
    pub high: u32,
    pub medium: u32,
    pub low: u32,
    pub informational: u32,
    pub untriaged: u32,
    pub unknown: u32,
}

impl FindingCounts {
    pub fn add(&mut self, severity: Option<Severity>) {
        let slot = match severity {
            Some(Severity::Critical) => &mut self.critical,
            Some(Severity::High) => &mut self.high,
            Some(Severity::Medium) => &mut self.medium,
            Some(Severity::Low) => &mut self.low,
            Some(Severity::Informational) => &mut self.informational,
            Some(Severity::Untriaged) => &mut self.untriaged,
            None => &mut self.unknown,
        };
        *slot += 1;
    }

    pub fn count(&self, severity: Severity) -> u32 {
        match severity {
            Severity::Critical => self.critical,
            Severity::High => self.high,
            Severity::Medium => self.medium,
            Severity::Low => self.low,
            Severity::Informational => self.informational,
            Severity::Untriaged => self.untriaged,
        }
    }

    /// Findings at or above `threshold`.
    pub fn at_or_above(&self, threshold: Severity) -> u32 {
        Severity::BLOCKING_ORDER
            .iter()
            .filter(|s| **s >= threshold)
            .map(|s| self.count(*s))
            .sum()
    }

    pub fn total(&self) -> u32 {
        self.critical
            + self.high
            + self.medium
            + self.low
            + self.informational
            + self.untriaged
            + self.unknown
    }

    pub fn summary(&self) -> String {
        format!(
            "critical {}, high {}, medium {}, low {}, informational {}, untriaged {}{}",
            self.critical,
            self.high,
            self.medium,
            self.low,
            self.informational,
            self.untriaged,
            if self.unknown > 0 {
                format!(", unrated {}", self.unknown)
            } else {
                String::new()
            }
        )
    }
}

/// One AMI listed in the image's output resources (one per region and account).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputAmi {
    pub region: String,
    pub account_id: Option<String>,
    pub ami_id: String,
    pub name: Option<String>,
}

/// Why an image failed, as GetImage tells it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FailureContext {
    pub stage: Option<String>,
    pub failed_step: Option<String>,
    pub workflow_execution_id: Option<String>,
    pub detail: Option<String>,
}

/// The facts of one image build version, from GetImage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageFacts {
    pub arn: String,
    pub name: String,
    pub version: BuildVersion,
    pub status: String,
    pub reason: Option<String>,
    pub failure: Option<FailureContext>,
    pub pipeline_arn: Option<String>,
    pub pipeline_name: Option<String>,
    pub tests_enabled: bool,
    pub scanning_enabled: bool,
    /// `None` when GetImage reports no scan state at all.
    pub scan_status: Option<String>,
    pub scan_reason: Option<String>,
    pub amis: Vec<OutputAmi>,
}

impl ImageFacts {
    /// The AMI distributed to this account and region, if any.
    pub fn local_ami(&self, account: &str, region: &str) -> Option<&OutputAmi> {
        self.amis.iter().find(|a| {
            a.region == region
                && a.account_id
                    .as_deref()
                    .map(|id| id == account)
                    .unwrap_or(true)
        })
    }

    /// AMIs in other regions or accounts: reported, never touched.
    pub fn remote_amis(&self, account: &str, region: &str) -> Vec<&OutputAmi> {
        let local = self.local_ami(account, region).map(|a| a.ami_id.clone());
        self.amis
            .iter()
            .filter(|a| Some(&a.ami_id) != local.as_ref())
            .collect()
    }
}

/// What EC2 says about an AMI right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmiFacts {
    pub ami_id: String,
    pub state: String,
    pub owner_id: Option<String>,
    pub deprecation_time: Option<String>,
    pub root_device_name: Option<String>,
    pub architecture: Option<String>,
    pub tags: Vec<(String, String)>,
}

impl AmiFacts {
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_versions_order_by_semver_then_build() {
        let a =
            BuildVersion::from_arn("arn:aws:imagebuilder:us-east-1:1:image/x/1.0.10/1").unwrap();
        let b = BuildVersion::from_arn("arn:aws:imagebuilder:us-east-1:1:image/x/1.0.9/7").unwrap();
        assert!(a > b);
        assert!(a.sort_key() > b.sort_key());
        assert_eq!(BuildVersion::from_sort_key(&a.sort_key()), Some(a));
    }

    #[test]
    fn a_versionless_arn_is_refused_with_the_expected_form() {
        let err =
            BuildVersion::from_arn("arn:aws:imagebuilder:us-east-1:1:image/x/1.0.0").unwrap_err();
        assert!(err.to_string().contains("<x.y.z>/<build>"));
    }

    #[test]
    fn severities_parse_in_any_case_and_count_at_or_above_a_threshold() {
        let mut c = FindingCounts::default();
        for s in ["critical", "HIGH", "Medium", "untriaged", "bogus"] {
            c.add(Severity::parse(s));
        }
        assert_eq!(c.at_or_above(Severity::High), 2);
        assert_eq!(c.at_or_above(Severity::Medium), 3);
        assert_eq!(c.total(), 5);
        assert_eq!(c.unknown, 1);
    }
}
