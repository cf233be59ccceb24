//! The promotion gate: turns what was observed about an image into a decision, with the reason
//! for it. Pure: no I/O, no clock; the caller passes the time in.

use chrono::{DateTime, Duration, SecondsFormat, Utc};

use crate::image::{AmiFacts, BuildVersion, FindingCounts, ImageFacts, OutputAmi, Severity};

/// Tag keys this project writes on AMIs. Image Builder reserves `CreatedBy` and
/// `Ec2ImageBuilderArn`, so ours use their own names.
pub mod tags {
    pub const STATUS: &str = "promotion-status";
    pub const PROMOTED_AT: &str = "promoted-at";
    pub const SOURCE_IMAGE: &str = "source-image-arn";
    pub const BUILD_VERSION: &str = "build-version";
    pub const RETIRED_AT: &str = "retired-at";
    pub const SUPERSEDED_BY: &str = "superseded-by";
    pub const MANAGED_BY: &str = "managed-by";
    pub const QUARANTINE: &str = "quarantine";

    pub const PROMOTED: &str = "promoted";
    pub const RETIRED: &str = "retired";
    pub const FAILED: &str = "promotion-failed";
    pub const MANAGER: &str = "vscode-host-images";
}

/// The promoted image the ledger remembers for the pointer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentPromotion {
    pub image_arn: String,
    pub version: BuildVersion,
    pub ami_id: String,
}

/// Everything the gate looks at, gathered by the caller.
#[derive(Debug, Clone)]
pub struct Observation<'a> {
    pub image: &'a ImageFacts,
    pub account: &'a str,
    pub region: &'a str,
    /// Present when the scan completed and its findings were listed.
    pub findings: Option<FindingCounts>,
    /// EC2's view of the AMI for this account and region; `None` when EC2 does not know it.
    pub ami: Option<AmiFacts>,
    pub current: Option<CurrentPromotion>,
    /// The AMI the pointer holds now, if the pointer exists.
    pub pointer_value: Option<String>,
}

/// Policy knobs of the gate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GatePolicy {
    pub severity_threshold: Severity,
    pub require_scan: bool,
    pub deprecate_after_days: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Promotion {
    pub image_arn: String,
    pub version: BuildVersion,
    pub ami_id: String,
    pub previous_ami: Option<String>,
    pub ami_tags: Vec<(String, String)>,
    pub retire_tags: Vec<(String, String)>,
    pub deprecate_previous_at: DateTime<Utc>,
    pub remote_amis: Vec<OutputAmi>,
    pub findings: Option<FindingCounts>,
    /// Set when a scan did not complete and configuration allowed promotion anyway.
    pub scan_waived: Option<String>,
}

/// Why an image that built fine is not promoted.
#[derive(Debug, Clone, PartialEq)]
pub enum BlockReason {
    TestsDisabled,
    NoAmiHere {
        regions: Vec<String>,
    },
    AmiMissing {
        ami_id: String,
    },
    AmiNotAvailable {
        ami_id: String,
        state: String,
    },
    AmiNotOwned {
        ami_id: String,
        owner: Option<String>,
    },
    AmiQuarantined {
        ami_id: String,
    },
    ScanOff,
    ScanIncomplete {
        status: String,
        reason: Option<String>,
    },
    Findings {
        counts: FindingCounts,
        threshold: Severity,
    },
}

impl BlockReason {
    pub fn describe(&self) -> String {
        match self {
            BlockReason::TestsDisabled => {
                "image tests were not enabled for this build, so nothing proves the AMI works"
                    .into()
            }
            BlockReason::NoAmiHere { regions } => format!(
                "the image produced no AMI for this account and region (AMIs exist in: {})",
                if regions.is_empty() {
                    "none".to_string()
                } else {
                    regions.join(", ")
                }
            ),
            BlockReason::AmiMissing { ami_id } => {
                format!(
                    "AMI {ami_id} is listed by Image Builder but unknown to EC2 (deregistered?)"
                )
            }
            BlockReason::AmiNotAvailable { ami_id, state } => {
                format!("AMI {ami_id} is in state `{state}`, not `available`")
            }
            BlockReason::AmiNotOwned { ami_id, owner } => format!(
                "AMI {ami_id} is owned by account {}, not this one",
                owner.as_deref().unwrap_or("(unknown)")
            ),
            BlockReason::AmiQuarantined { ami_id } => {
                format!("AMI {ami_id} is tagged as quarantined")
            }
            BlockReason::ScanOff => {
                "image scanning was switched off for this build and a scan is required".into()
            }
            BlockReason::ScanIncomplete { status, reason } => format!(
                "the vulnerability scan ended as {status} without completing{}",
                reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            ),
            BlockReason::Findings { counts, threshold } => format!(
                "{} finding(s) at or above {threshold} ({})",
                counts.at_or_above(*threshold),
                counts.summary()
            ),
        }
    }

    /// Short machine-friendly name, used in logs and the ledger.
    pub fn code(&self) -> &'static str {
        match self {
            BlockReason::TestsDisabled => "tests-disabled",
            BlockReason::NoAmiHere { .. } => "no-ami-here",
            BlockReason::AmiMissing { .. } => "ami-missing",
            BlockReason::AmiNotAvailable { .. } => "ami-not-available",
            BlockReason::AmiNotOwned { .. } => "ami-not-owned",
            BlockReason::AmiQuarantined { .. } => "ami-quarantined",
            BlockReason::ScanOff => "scan-off",
            BlockReason::ScanIncomplete { .. } => "scan-incomplete",
            BlockReason::Findings { .. } => "findings",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Promote(Box<Promotion>),
    /// Not yet: something is still running. A later event looks again.
    Defer {
        reason: String,
    },
    Block {
        reason: BlockReason,
    },
    /// An older build than the one already promoted: the pointer never moves back.
    Stale {
        current: CurrentPromotion,
    },
    /// This image is already the promoted one.
    AlreadyCurrent,
    /// The build failed or was cancelled.
    Alert {
        status: String,
        reason: String,
    },
    /// Nothing to do; the reason is logged.
    Ignore {
        reason: String,
    },
}

impl Decision {
    /// Whether the outcome is final for this image, so a repeated event changes nothing.
    pub fn is_final(&self) -> bool {
        !matches!(self, Decision::Defer { .. } | Decision::Ignore { .. })
    }

    pub fn label(&self) -> &'static str {
        match self {
            Decision::Promote(_) => "promote",
            Decision::Defer { .. } => "defer",
            Decision::Block { .. } => "block",
            Decision::Stale { .. } => "stale",
            Decision::AlreadyCurrent => "already-current",
            Decision::Alert { .. } => "alert",
            Decision::Ignore { .. } => "ignore",
        }
    }
}

const SCAN_RUNNING: [&str; 3] = ["PENDING", "SCANNING", "COLLECTING"];
const SCAN_ENDED_INCOMPLETE: [&str; 3] = ["ABANDONED", "FAILED", "TIMED_OUT"];

/// Decides what to do with an image whose status GetImage reported.
pub fn decide(obs: &Observation<'_>, policy: &GatePolicy, now: DateTime<Utc>) -> Decision {
    let image = obs.image;
    match image.status.as_str() {
        "AVAILABLE" => {}
        "FAILED" | "CANCELLED" => {
            return Decision::Alert {
                status: image.status.clone(),
                reason: failure_text(image),
            }
        }
        other => {
            return Decision::Ignore {
                reason: format!(
                    "image status is {other}; only AVAILABLE, FAILED and CANCELLED are acted on"
                ),
            }
        }
    }

    // An older build never moves the pointer, whatever its gates say.
    if let Some(current) = &obs.current {
        if current.image_arn == image.arn {
            return Decision::AlreadyCurrent;
        }
        if current.version >= image.version {
            return Decision::Stale {
                current: current.clone(),
            };
        }
    }

    if !image.tests_enabled {
        return Decision::Block {
            reason: BlockReason::TestsDisabled,
        };
    }

    let Some(local) = image.local_ami(obs.account, obs.region) else {
        return Decision::Block {
            reason: BlockReason::NoAmiHere {
                regions: image
                    .amis
                    .iter()
                    .map(|a| format!("{} ({})", a.region, a.ami_id))
                    .collect(),
            },
        };
    };
    let Some(ami) = &obs.ami else {
        return Decision::Block {
            reason: BlockReason::AmiMissing {
                ami_id: local.ami_id.clone(),
            },
        };
    };
    match ami.state.as_str() {
        "available" => {}
        "pending" => {
            return Decision::Defer {
                reason: format!("AMI {} is still pending", ami.ami_id),
            };
        }
        state => {
            return Decision::Block {
                reason: BlockReason::AmiNotAvailable {
                    ami_id: ami.ami_id.clone(),
                    state: state.into(),
                },
            }
        }
    }
    if ami.owner_id.as_deref() != Some(obs.account) {
        return Decision::Block {
            reason: BlockReason::AmiNotOwned {
                ami_id: ami.ami_id.clone(),
                owner: ami.owner_id.clone(),
            },
        };
    }
    if ami.tag(tags::QUARANTINE).is_some() {
        return Decision::Block {
            reason: BlockReason::AmiQuarantined {
                ami_id: ami.ami_id.clone(),
            },
        };
    }

    let mut scan_waived = None;
    let scan_status = image
        .scan_status
        .as_deref()
        .filter(|_| image.scanning_enabled);
    match scan_status {
        None => {
            if policy.require_scan {
                return Decision::Block {
                    reason: BlockReason::ScanOff,
                };
            }
            scan_waived = Some(
                "image scanning was switched off; promoted because scans are not required".into(),
            );
        }
        Some(s) if SCAN_RUNNING.contains(&s) => {
            return Decision::Defer {
                reason: format!("the vulnerability scan is still {s}"),
            };
        }
        Some("COMPLETED") => match &obs.findings {
            Some(counts) if counts.at_or_above(policy.severity_threshold) > 0 => {
                return Decision::Block {
                    reason: BlockReason::Findings {
                        counts: counts.clone(),
                        threshold: policy.severity_threshold,
                    },
                };
            }
            Some(_) => {}
            None => {
                return Decision::Defer {
                    reason: "scan findings were not listed yet".into(),
                }
            }
        },
        Some(s) => {
            let known = SCAN_ENDED_INCOMPLETE.contains(&s);
            if policy.require_scan || !known {
                return Decision::Block {
                    reason: BlockReason::ScanIncomplete {
                        status: s.to_string(),
                        reason: image.scan_reason.clone(),
                    },
                };
            }
            scan_waived = Some(format!(
                "the scan ended as {s}; promoted because scans are not required"
            ));
        }
    }

    let promoted_at = timestamp(now);
    // When a retried promotion already moved the pointer, the ledger still knows what it held.
    let previous_ami = obs
        .pointer_value
        .clone()
        .filter(|p| *p != local.ami_id)
        .or_else(|| {
            obs.current
                .as_ref()
                .map(|c| c.ami_id.clone())
                .filter(|a| *a != local.ami_id)
        });
    Decision::Promote(Box::new(Promotion {
        image_arn: image.arn.clone(),
        version: image.version,
        ami_id: local.ami_id.clone(),
        ami_tags: vec![
            (tags::STATUS.into(), tags::PROMOTED.into()),
            (tags::PROMOTED_AT.into(), promoted_at.clone()),
            (tags::SOURCE_IMAGE.into(), image.arn.clone()),
            (tags::BUILD_VERSION.into(), image.version.to_string()),
            (tags::MANAGED_BY.into(), tags::MANAGER.into()),
        ],
        retire_tags: vec![
            (tags::STATUS.into(), tags::RETIRED.into()),
            (tags::RETIRED_AT.into(), promoted_at),
            (tags::SUPERSEDED_BY.into(), local.ami_id.clone()),
        ],
        previous_ami,
        deprecate_previous_at: now + Duration::days(i64::from(policy.deprecate_after_days)),
        remote_amis: image
            .remote_amis(obs.account, obs.region)
            .into_iter()
            .cloned()
            .collect(),
        findings: obs.findings.clone(),
        scan_waived,
    }))
}

fn failure_text(image: &ImageFacts) -> String {
    let mut text = image
        .reason
        .clone()
        .unwrap_or_else(|| "Image Builder gave no reason".into());
    if let Some(f) = &image.failure {
        let parts: Vec<String> = [
            f.stage.as_ref().map(|s| format!("stage {s}")),
            f.failed_step.as_ref().map(|s| format!("step {s}")),
            f.workflow_execution_id
                .as_ref()
                .map(|s| format!("workflow execution {s}")),
            f.detail.clone(),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !parts.is_empty() {
            text.push_str(&format!(" ({})", parts.join("; ")));
        }
    }
    text
}

/// ISO-8601 UTC to the second, the form used in tags and messages.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::FailureContext;

    const ACCOUNT: &str = "123456789012";
    const REGION: &str = "us-east-1";

    fn image(build: u32) -> ImageFacts {
        ImageFacts {
            arn: format!(
                "arn:aws:imagebuilder:us-east-1:{ACCOUNT}:image/vscode-host/1.0.0/{build}"
            ),
            name: "vscode-host".into(),
            version: BuildVersion {
                major: 1,
                minor: 0,
                patch: 0,
                build,
            },
            status: "AVAILABLE".into(),
            reason: None,
            failure: None,
            pipeline_arn: None,
            pipeline_name: Some("vscode-host".into()),
            tests_enabled: true,
            scanning_enabled: true,
            scan_status: Some("COMPLETED".into()),
            scan_reason: None,
            amis: vec![
                OutputAmi {
                    region: REGION.into(),
                    account_id: Some(ACCOUNT.into()),
                    ami_id: "ami-new".into(),
                    name: None,
                },
                OutputAmi {
                    region: "eu-west-1".into(),
                    account_id: Some(ACCOUNT.into()),
                    ami_id: "ami-eu".into(),
                    name: None,
                },
            ],
        }
    }

    fn ami(state: &str) -> AmiFacts {
        AmiFacts {
            ami_id: "ami-new".into(),
            state: state.into(),
            owner_id: Some(ACCOUNT.into()),
            deprecation_time: None,
            root_device_name: None,
            architecture: None,
            tags: vec![],
        }
    }

    fn policy() -> GatePolicy {
        GatePolicy {
            severity_threshold: Severity::High,
            require_scan: true,
            deprecate_after_days: 30,
        }
    }

    fn observe(image: &ImageFacts) -> Observation<'_> {
        Observation {
            image,
            account: ACCOUNT,
            region: REGION,
            findings: Some(FindingCounts {
                medium: 3,
                ..Default::default()
            }),
            ami: Some(ami("available")),
            current: None,
            pointer_value: Some("ami-old".into()),
        }
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-04T04:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn promotes_a_tested_clean_image_and_retires_the_previous_ami() {
        let img = image(7);
        let Decision::Promote(p) = decide(&observe(&img), &policy(), now()) else {
            panic!()
        };
        assert_eq!(p.ami_id, "ami-new");
        assert_eq!(p.previous_ami.as_deref(), Some("ami-old"));
        assert_eq!(p.remote_amis.len(), 1);
        assert_eq!(p.remote_amis[0].ami_id, "ami-eu");
        assert_eq!(timestamp(p.deprecate_previous_at), "2027-01-03T04:00:00Z");
        assert!(p
            .ami_tags
            .contains(&(tags::BUILD_VERSION.into(), "1.0.0/7".into())));
    }

    #[test]
    fn a_retry_after_the_pointer_moved_still_retires_what_the_ledger_last_promoted() {
        let img = image(7);
        let mut obs = observe(&img);
        obs.pointer_value = Some("ami-new".into());
        obs.current = Some(CurrentPromotion {
            image_arn: image(6).arn,
            version: image(6).version,
            ami_id: "ami-old".into(),
        });
        let Decision::Promote(p) = decide(&obs, &policy(), now()) else {
            panic!()
        };
        assert_eq!(p.previous_ami.as_deref(), Some("ami-old"));
    }

    #[test]
    fn refuses_to_promote_an_image_older_than_the_pointer() {
        let img = image(6);
        let mut obs = observe(&img);
        obs.current = Some(CurrentPromotion {
            image_arn: image(7).arn,
            version: image(7).version,
            ami_id: "ami-old".into(),
        });
        assert!(matches!(
            decide(&obs, &policy(), now()),
            Decision::Stale { .. }
        ));
    }

    #[test]
    fn the_promoted_image_seen_again_is_already_current() {
        let img = image(7);
        let mut obs = observe(&img);
        obs.current = Some(CurrentPromotion {
            image_arn: img.arn.clone(),
            version: img.version,
            ami_id: "ami-new".into(),
        });
        assert_eq!(decide(&obs, &policy(), now()), Decision::AlreadyCurrent);
    }

    #[test]
    fn a_scan_still_running_defers() {
        let mut img = image(7);
        img.scan_status = Some("SCANNING".into());
        assert!(matches!(
            decide(&observe(&img), &policy(), now()),
            Decision::Defer { .. }
        ));
    }

    #[test]
    fn a_high_finding_blocks_at_the_default_threshold() {
        let img = image(7);
        let mut obs = observe(&img);
        obs.findings = Some(FindingCounts {
            high: 1,
            ..Default::default()
        });
        let Decision::Block { reason } = decide(&obs, &policy(), now()) else {
            panic!()
        };
        assert_eq!(reason.code(), "findings");
        assert!(reason
            .describe()
            .starts_with("1 finding(s) at or above HIGH"));
    }

    #[test]
    fn medium_findings_pass_at_high_but_block_at_medium() {
        let img = image(7);
        assert!(matches!(
            decide(&observe(&img), &policy(), now()),
            Decision::Promote(_)
        ));
        let strict = GatePolicy {
            severity_threshold: Severity::Medium,
            ..policy()
        };
        assert!(matches!(
            decide(&observe(&img), &strict, now()),
            Decision::Block { .. }
        ));
    }

    #[test]
    fn an_abandoned_scan_blocks_unless_scans_are_optional() {
        let mut img = image(7);
        img.scan_status = Some("ABANDONED".into());
        img.scan_reason = Some("instance terminated".into());
        let Decision::Block { reason } = decide(&observe(&img), &policy(), now()) else {
            panic!()
        };
        assert!(
            reason.describe().contains("ABANDONED")
                && reason.describe().contains("instance terminated")
        );

        let lenient = GatePolicy {
            require_scan: false,
            ..policy()
        };
        let Decision::Promote(p) = decide(&observe(&img), &lenient, now()) else {
            panic!()
        };
        assert!(p.scan_waived.unwrap().contains("ABANDONED"));
    }

    #[test]
    fn scanning_switched_off_blocks_when_a_scan_is_required() {
        let mut img = image(7);
        img.scanning_enabled = false;
        img.scan_status = None;
        assert_eq!(
            decide(&observe(&img), &policy(), now()),
            Decision::Block {
                reason: BlockReason::ScanOff
            }
        );
    }

    #[test]
    fn an_unknown_scan_status_blocks_even_when_scans_are_optional() {
        let mut img = image(7);
        img.scan_status = Some("SOMETHING_NEW".into());
        let lenient = GatePolicy {
            require_scan: false,
            ..policy()
        };
        assert!(matches!(
            decide(&observe(&img), &lenient, now()),
            Decision::Block { .. }
        ));
    }

    #[test]
    fn tests_disabled_blocks() {
        let mut img = image(7);
        img.tests_enabled = false;
        assert_eq!(
            decide(&observe(&img), &policy(), now()),
            Decision::Block {
                reason: BlockReason::TestsDisabled
            }
        );
    }

    #[test]
    fn a_vanished_ami_blocks_and_a_pending_ami_defers() {
        let img = image(7);
        let mut obs = observe(&img);
        obs.ami = None;
        assert!(matches!(
            decide(&obs, &policy(), now()),
            Decision::Block {
                reason: BlockReason::AmiMissing { .. }
            }
        ));
        obs.ami = Some(ami("pending"));
        assert!(matches!(
            decide(&obs, &policy(), now()),
            Decision::Defer { .. }
        ));
    }

    #[test]
    fn an_ami_of_another_owner_or_in_quarantine_blocks() {
        let img = image(7);
        let mut obs = observe(&img);
        obs.ami = Some(AmiFacts {
            owner_id: Some("999999999999".into()),
            ..ami("available")
        });
        assert!(matches!(
            decide(&obs, &policy(), now()),
            Decision::Block {
                reason: BlockReason::AmiNotOwned { .. }
            }
        ));
        obs.ami = Some(AmiFacts {
            tags: vec![(tags::QUARANTINE.into(), "CVE".into())],
            ..ami("available")
        });
        assert!(matches!(
            decide(&obs, &policy(), now()),
            Decision::Block {
                reason: BlockReason::AmiQuarantined { .. }
            }
        ));
    }

    #[test]
    fn no_ami_in_this_region_blocks_and_lists_where_they_are() {
        let mut img = image(7);
        img.amis.retain(|a| a.region != REGION);
        let Decision::Block { reason } = decide(&observe(&img), &policy(), now()) else {
            panic!()
        };
        assert!(reason.describe().contains("eu-west-1 (ami-eu)"));
    }

    #[test]
    fn a_failed_build_alerts_with_the_reason_and_failure_context() {
        let mut img = image(7);
        img.status = "FAILED".into();
        img.reason = Some("Image test failed".into());
        img.failure = Some(FailureContext {
            stage: Some("TESTING".into()),
            failed_step: Some("RunTests".into()),
            ..Default::default()
        });
        let Decision::Alert { reason, .. } = decide(&observe(&img), &policy(), now()) else {
            panic!()
        };
        assert_eq!(reason, "Image test failed (stage TESTING; step RunTests)");
    }

    #[test]
    fn statuses_it_does_not_act_on_are_ignored() {
        let mut img = image(7);
        img.status = "DEPRECATED".into();
        assert!(matches!(
            decide(&observe(&img), &policy(), now()),
            Decision::Ignore { .. }
        ));
    }
}
