//! The promote-image flow: observe the image, decide, then apply the decision exactly once.
//!
//! Phases: parse the event; ignore what is not ours; read GetImage; claim the image in the
//! ledger; for an AVAILABLE image take the pointer lock and gather the gate's inputs; decide;
//! apply (tags, pointer, read-back, ledger, retirement, notification); record the outcome.

use chrono::{DateTime, Utc};
use lambda_runtime::Diagnostic;
use serde::Serialize;
use serde_json::Value;
use tracing::{info, warn};

use crate::aws::ledger::{Claim, Ledger, Lock};
use crate::aws::{ec2, imagebuilder, sns, ssm, AwsError, Clients};
use crate::config::PromoteConfig;
use crate::events::{parse_image_event, EventError, ImageEvent};
use crate::image::{BuildVersion, ImageFacts};
use crate::notify::{Body, Level, Notification};
use crate::promotion::{
    decide, tags, timestamp, CurrentPromotion, Decision, GatePolicy, Observation, Promotion,
};

const ACTED_ON: [&str; 3] = ["AVAILABLE", "FAILED", "CANCELLED"];

#[derive(Debug, thiserror::Error)]
pub enum PromoteError {
    #[error(transparent)]
    Event(#[from] EventError),
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error(
        "pointer {pointer} holds {seen} {waited_secs}s after it was set to {expected}: AWS drops an \
         aws:ec2:image value it cannot validate (does the function have ec2:DescribeImages, and is \
         the AMI available in this region?)"
    )]
    PointerNotUpdated {
        pointer: String,
        expected: String,
        seen: String,
        waited_secs: u64,
    },
    #[error("pointer {pointer} is locked by invocation {owner}; the event will be retried")]
    PointerBusy { pointer: String, owner: String },
}

impl From<PromoteError> for Diagnostic {
    fn from(err: PromoteError) -> Diagnostic {
        let error_type = match &err {
            PromoteError::Event(_) => "InvalidEvent",
            PromoteError::Aws(e) if e.is_transient() => "AwsTransient",
            PromoteError::Aws(_) => "AwsCallFailed",
            PromoteError::PointerNotUpdated { .. } => "PointerNotUpdated",
            PromoteError::PointerBusy { .. } => "PointerBusy",
        };
        Diagnostic {
            error_type: error_type.into(),
            error_message: err.to_string(),
        }
    }
}

/// What one invocation did, returned to the caller and logged.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Outcome {
    pub decision: String,
    pub reason: String,
    pub image_arn: Option<String>,
    pub ami_id: Option<String>,
    pub previous_ami: Option<String>,
    pub dry_run: bool,
    pub notification_id: Option<String>,
    pub warnings: Vec<String>,
}

impl Outcome {
    fn skip(decision: &str, reason: impl Into<String>, image_arn: Option<&str>) -> Self {
        let reason = reason.into();
        info!(decision, image = image_arn.unwrap_or("-"), %reason, "nothing to do");
        Outcome {
            decision: decision.into(),
            reason,
            image_arn: image_arn.map(str::to_string),
            ami_id: None,
            previous_ami: None,
            dry_run: false,
            notification_id: None,
            warnings: vec![],
        }
    }
}

pub struct Promoter {
    pub config: PromoteConfig,
    pub clients: Clients,
    ledger: Ledger,
}

impl Promoter {
    pub fn new(config: PromoteConfig, clients: Clients) -> Self {
        let ledger = Ledger::new(clients.dynamodb.clone(), config.ledger_table.clone());
        Promoter {
            config,
            clients,
            ledger,
        }
    }

    fn policy(&self) -> GatePolicy {
        GatePolicy {
            severity_threshold: self.config.severity_threshold,
            require_scan: self.config.require_scan,
            deprecate_after_days: self.config.deprecate_after_days,
        }
    }

    /// Handles one invocation payload. `owner` identifies this invocation in the ledger (the
    /// Lambda request id).
    pub async fn handle(
        &self,
        payload: &Value,
        owner: &str,
        now: DateTime<Utc>,
    ) -> Result<Outcome, PromoteError> {
        let envelope = parse_image_event(payload)?;
        let image_arn = match &envelope.event {
            ImageEvent::Other { detail_type } => {
                return Ok(Outcome::skip(
                    "ignore",
                    format!("event type `{detail_type}` is not acted on"),
                    None,
                ))
            }
            ImageEvent::StateChange {
                image_arn, status, ..
            } if !ACTED_ON.contains(&status.as_str()) => {
                return Ok(Outcome::skip(
                    "ignore",
                    format!("status {status} is not acted on (only AVAILABLE, FAILED, CANCELLED)"),
                    Some(image_arn),
                ))
            }
            ImageEvent::StateChange { image_arn, .. } | ImageEvent::ScanCompleted { image_arn } => {
                image_arn.clone()
            }
        };
        if !image_arn.starts_with(&self.config.image_arn_prefix) {
            return Ok(Outcome::skip(
                "ignore",
                format!(
                    "image of another pipeline (expected ARNs under {})",
                    self.config.image_arn_prefix
                ),
                Some(&image_arn),
            ));
        }

        // A malformed ARN under our prefix is a bad event, not something a retry could fix.
        BuildVersion::from_arn(&image_arn).map_err(EventError::from)?;

        let image = imagebuilder::get_image(&self.clients.imagebuilder, &image_arn).await?;
        if let Some(pipeline) = image
            .pipeline_arn
            .as_deref()
            .filter(|p| *p != self.config.pipeline_arn)
        {
            return Ok(Outcome::skip(
                "ignore",
                format!("image built by another pipeline ({pipeline})"),
                Some(&image_arn),
            ));
        }
        let (region, account) = region_and_account(&image_arn);
        info!(
            image = %image_arn,
            status = %image.status,
            scan = image.scan_status.as_deref().unwrap_or("-"),
            "image observed"
        );

        if self.config.dry_run {
            return self.plan_only(&image, region, account, now).await;
        }

        match self
            .ledger
            .claim_image(&image_arn, owner, now, self.config.lease)
            .await?
        {
            Claim::Acquired => {}
            Claim::Done {
                outcome,
                finished_at,
            } => {
                return Ok(Outcome::skip(
                    "already-handled",
                    format!(
                        "outcome `{outcome}` was recorded at {}",
                        finished_at.unwrap_or_default()
                    ),
                    Some(&image_arn),
                ))
            }
            Claim::Busy { owner } => {
                return Ok(Outcome::skip(
                    "already-handled",
                    format!("invocation {owner} is handling this image right now"),
                    Some(&image_arn),
                ))
            }
        }

        let result = self
            .decide_and_apply(&image, region, account, owner, now)
            .await;
        match &result {
            Ok((decision, outcome)) if decision.is_final() => {
                self.ledger
                    .finish_image(&image_arn, owner, decision.label(), &outcome.reason, now)
                    .await?;
            }
            _ => {
                if let Err(e) = self.ledger.release_image(&image_arn, owner).await {
                    // The claim's lease expires on its own; the caller still gets the first error.
                    warn!(image = %image_arn, error = %e, "could not release the image claim");
                }
            }
        }
        result.map(|(_, outcome)| outcome)
    }

    async fn decide_and_apply(
        &self,
        image: &ImageFacts,
        region: &str,
        account: &str,
        owner: &str,
        now: DateTime<Utc>,
    ) -> Result<(Decision, Outcome), PromoteError> {
        let pointer = &self.config.pointer_parameter;
        if image.status != "AVAILABLE" {
            let obs = self.bare_observation(image, region, account);
            let decision = decide(&obs, &self.policy(), now);
            let outcome = self
                .report(image, &decision, region, account, now, false)
                .await?;
            return Ok((decision, outcome));
        }

        let current = match self
            .ledger
            .lock_pointer(pointer, owner, now, self.config.lease)
            .await?
        {
            Lock::Acquired { current } => current,
            Lock::Busy { owner } => {
                return Err(PromoteError::PointerBusy {
                    pointer: pointer.clone(),
                    owner,
                })
            }
        };
        let result = self
            .gate_and_promote(image, region, account, current, owner, now)
            .await;
        let promoted = matches!(&result, Ok((Decision::Promote(_), _)));
        if !promoted {
            if let Err(e) = self.ledger.unlock_pointer(pointer, owner).await {
                warn!(pointer = %pointer, error = %e, "pointer lock not released; it expires");
            }
        }
        result
    }

    async fn gate_and_promote(
        &self,
        image: &ImageFacts,
        region: &str,
        account: &str,
        current: Option<CurrentPromotion>,
        owner: &str,
        now: DateTime<Utc>,
    ) -> Result<(Decision, Outcome), PromoteError> {
        let obs = self.observe(image, region, account, current).await?;
        let decision = decide(&obs, &self.policy(), now);
        let outcome = match &decision {
            Decision::Promote(p) => self.promote(image, p, owner, now).await?,
            other => {
                self.report(image, other, region, account, now, false)
                    .await?
            }
        };
        Ok((decision, outcome))
    }

    fn bare_observation<'a>(
        &self,
        image: &'a ImageFacts,
        region: &'a str,
        account: &'a str,
    ) -> Observation<'a> {
        Observation {
            image,
            account,
            region,
            findings: None,
            ami: None,
            current: None,
            pointer_value: None,
        }
    }

    /// Gathers the gate's inputs: scan findings, EC2's view of the AMI, the pointer.
    async fn observe<'a>(
        &self,
        image: &'a ImageFacts,
        region: &'a str,
        account: &'a str,
        current: Option<CurrentPromotion>,
    ) -> Result<Observation<'a>, PromoteError> {
        let findings = if image.scanning_enabled
            && image.scan_status.as_deref() == Some("COMPLETED")
        {
            Some(imagebuilder::scan_finding_counts(&self.clients.imagebuilder, &image.arn).await?)
        } else {
            None
        };
        let ami = match image.local_ami(account, region) {
            Some(local) => ec2::describe_ami(&self.clients.ec2, &local.ami_id).await?,
            None => None,
        };
        let pointer_value =
            ssm::read_pointer(&self.clients.ssm, &self.config.pointer_parameter).await?;
        Ok(Observation {
            image,
            account,
            region,
            findings,
            ami,
            current,
            pointer_value,
        })
    }

    /// Dry run: observe and decide as usual, then log and notify the plan. Changes nothing.
    async fn plan_only(
        &self,
        image: &ImageFacts,
        region: &str,
        account: &str,
        now: DateTime<Utc>,
    ) -> Result<Outcome, PromoteError> {
        let decision = if image.status == "AVAILABLE" {
            let current = self.ledger.current(&self.config.pointer_parameter).await?;
            let obs = self.observe(image, region, account, current).await?;
            decide(&obs, &self.policy(), now)
        } else {
            decide(
                &self.bare_observation(image, region, account),
                &self.policy(),
                now,
            )
        };
        self.report(image, &decision, region, account, now, true)
            .await
    }

    /// Applies a promotion. Order matters: the AMI is tagged before the pointer moves, and the
    /// pointer is read back before anything else is recorded.
    async fn promote(
        &self,
        image: &ImageFacts,
        p: &Promotion,
        owner: &str,
        now: DateTime<Utc>,
    ) -> Result<Outcome, PromoteError> {
        let pointer = &self.config.pointer_parameter;
        let clients = &self.clients;

        ec2::tag_ami(&clients.ec2, &p.ami_id, &p.ami_tags).await?;
        info!(ami = %p.ami_id, "tagged as promoted");

        let version = ssm::write_pointer(&clients.ssm, pointer, &p.ami_id).await?;
        match ssm::confirm_pointer(
            &clients.ssm,
            pointer,
            &p.ami_id,
            self.config.readback_timeout,
        )
        .await?
        {
            Ok(()) => {
                info!(pointer = %pointer, version, ami = %p.ami_id, "pointer read back: new AMI")
            }
            Err(seen) => {
                let seen = seen.unwrap_or_else(|| "nothing".into());
                let failed_tags = vec![(tags::STATUS.to_string(), tags::FAILED.to_string())];
                if let Err(e) = ec2::tag_ami(&clients.ec2, &p.ami_id, &failed_tags).await {
                    warn!(ami = %p.ami_id, error = %e, "could not tag the AMI promotion-failed");
                }
                let err = PromoteError::PointerNotUpdated {
                    pointer: pointer.clone(),
                    expected: p.ami_id.clone(),
                    seen,
                    waited_secs: self.config.readback_timeout.as_secs(),
                };
                let body = Body::new("Promotion failed: the pointer did not take the new AMI.")
                    .line("Image", &image.arn)
                    .line("AMI", &p.ami_id)
                    .line("Pointer", pointer)
                    .paragraph(&err.to_string())
                    .finish();
                let n = Notification::new(
                    &format!("Promotion FAILED for {} {}", image.name, image.version),
                    body,
                    "image.promotion-failed",
                    &self.pipeline_name(image),
                    Level::Critical,
                );
                if let Err(e) = sns::publish(&clients.sns, &self.config.topic_arn, &n).await {
                    warn!(error = %e, "could not publish the promotion failure");
                }
                if let Err(e) = self.ledger.unlock_pointer(pointer, owner).await {
                    warn!(pointer = %pointer, error = %e, "could not release the pointer lock");
                }
                return Err(err);
            }
        }

        let mut warnings = Vec::new();
        if let Some(previous) = &p.previous_ami {
            // The label makes rollback one command. Look the version up rather than assuming
            // `version - 1`: a retried promotion may already have written the new AMI once.
            if let Err(e) = self.label_previous(previous, version).await {
                warnings.push(format!("could not label the previous pointer version: {e}"));
            }
        }

        let promoted = CurrentPromotion {
            image_arn: p.image_arn.clone(),
            version: p.version,
            ami_id: p.ami_id.clone(),
        };
        self.ledger
            .commit_pointer(pointer, owner, &promoted, now)
            .await?;

        if let Some(previous) = &p.previous_ami {
            warnings.extend(self.retire(previous, p).await);
        }
        for w in &warnings {
            warn!(warning = %w, "promotion completed with a warning");
        }

        let mut outcome = Outcome {
            decision: "promote".into(),
            reason: format!(
                "image {} passed tests and scan; pointer now names {}",
                image.version, p.ami_id
            ),
            image_arn: Some(image.arn.clone()),
            ami_id: Some(p.ami_id.clone()),
            previous_ami: p.previous_ami.clone(),
            dry_run: false,
            notification_id: None,
            warnings,
        };
        let n = self.promotion_notice(image, p, &outcome.warnings, false, now);
        outcome.notification_id =
            Some(sns::publish(&clients.sns, &self.config.topic_arn, &n).await?);
        let previous = p.previous_ami.as_deref().unwrap_or("-");
        info!(image = %image.arn, ami = %p.ami_id, previous, "promoted");
        Ok(outcome)
    }

    async fn label_previous(&self, previous: &str, new_version: i64) -> Result<(), AwsError> {
        let pointer = &self.config.pointer_parameter;
        let history = ssm::history(&self.clients.ssm, pointer).await?;
        let Some(held) = history
            .iter()
            .rev()
            .find(|v| v.version < new_version && v.value == previous)
        else {
            return Err(AwsError::plain(
                "GetParameterHistory",
                pointer.as_str(),
                format!("no earlier version holds {previous}"),
            ));
        };
        ssm::label_version(
            &self.clients.ssm,
            pointer,
            held.version,
            ssm::PREVIOUS_LABEL,
        )
        .await
    }

    /// Tags the previous AMI as retired and schedules its deprecation. Failures are reported,
    /// not fatal: the pointer already names the new AMI.
    async fn retire(&self, previous: &str, p: &Promotion) -> Vec<String> {
        let mut warnings = Vec::new();
        match ec2::describe_ami(&self.clients.ec2, previous).await {
            Ok(Some(_)) => {}
            Ok(None) => {
                return vec![format!(
                    "previous AMI {previous} no longer exists; nothing to retire"
                )]
            }
            Err(e) => return vec![format!("could not look up previous AMI {previous}: {e}")],
        }
        if let Err(e) = ec2::tag_ami(&self.clients.ec2, previous, &p.retire_tags).await {
            warnings.push(format!(
                "could not tag previous AMI {previous} as retired: {e}"
            ));
        }
        match ec2::deprecate_ami(&self.clients.ec2, previous, p.deprecate_previous_at).await {
            Ok(()) => {
                let at = timestamp(p.deprecate_previous_at);
                info!(ami = %previous, %at, "previous AMI retired")
            }
            Err(e) => warnings.push(format!(
                "could not schedule deprecation of {previous} at {}: {e}",
                timestamp(p.deprecate_previous_at)
            )),
        }
        warnings
    }

    fn pipeline_name(&self, image: &ImageFacts) -> String {
        image.pipeline_name.clone().unwrap_or_else(|| {
            self.config
                .pipeline_arn
                .rsplit('/')
                .next()
                .unwrap_or("unknown")
                .to_string()
        })
    }

    fn rollback_command(&self) -> String {
        let p = &self.config.pointer_parameter;
        format!(
            "aws ssm put-parameter --overwrite --type String --data-type aws:ec2:image --name {p} \
             --value \"$(aws ssm get-parameter --name {p}:{} --query Parameter.Value --output text)\"",
            ssm::PREVIOUS_LABEL
        )
    }

    fn promotion_notice(
        &self,
        image: &ImageFacts,
        p: &Promotion,
        warnings: &[String],
        dry_run: bool,
        now: DateTime<Utc>,
    ) -> Notification {
        let headline = if dry_run {
            "DRY RUN: this image would be promoted. Nothing was changed."
        } else {
            "A new AMI is promoted: new hosts launch from it."
        };
        let mut body = Body::new(headline)
            .line("Image", &image.name)
            .line("Version", image.version)
            .line("Image ARN", &image.arn)
            .line("AMI", &p.ami_id)
            .line("Pointer", &self.config.pointer_parameter)
            .line("Promoted at", timestamp(now))
            .line(
                "Findings",
                p.findings
                    .as_ref()
                    .map(|f| f.summary())
                    .unwrap_or_else(|| "no completed scan".into()),
            );
        if let Some(w) = &p.scan_waived {
            body = body.line("Scan", w);
        }
        body = match &p.previous_ami {
            Some(prev) => body.line("Previous AMI", prev).line(
                "Previous AMI deprecates at",
                timestamp(p.deprecate_previous_at),
            ),
            None => body.line("Previous AMI", "none (first promotion)"),
        };
        if !p.remote_amis.is_empty() {
            let list: Vec<String> = p
                .remote_amis
                .iter()
                .map(|a| {
                    format!(
                        "  {} in {} (account {})",
                        a.ami_id,
                        a.region,
                        a.account_id.as_deref().unwrap_or("?")
                    )
                })
                .collect();
            body = body.paragraph(&format!(
                "Also distributed, left untouched:\n{}",
                list.join("\n")
            ));
        }
        if p.previous_ami.is_some() {
            body = body.paragraph(&format!(
                "Roll back to the previous AMI:\n  {}\nIt is scheduled for deprecation; keep it \
                 launchable with:\n  aws ec2 disable-image-deprecation --image-id {}",
                self.rollback_command(),
                p.previous_ami.as_deref().unwrap_or_default()
            ));
        }
        if !warnings.is_empty() {
            body = body.paragraph(&format!("Warnings:\n  {}", warnings.join("\n  ")));
        }
        let prefix = if dry_run {
            "[dry run] Would promote"
        } else {
            "Promoted"
        };
        Notification::new(
            &format!("{prefix} {} {} ({})", image.name, image.version, p.ami_id),
            body.finish(),
            if dry_run {
                "image.dry-run"
            } else {
                "image.promoted"
            },
            &self.pipeline_name(image),
            Level::Info,
        )
        .with_attribute("image_version", &image.version.to_string())
    }

    /// Logs a non-promotion decision and notifies people when they need to know.
    async fn report(
        &self,
        image: &ImageFacts,
        decision: &Decision,
        region: &str,
        account: &str,
        now: DateTime<Utc>,
        dry_run: bool,
    ) -> Result<Outcome, PromoteError> {
        let (reason, notice) = match decision {
            Decision::Promote(p) => (
                format!("would promote {} as {}", image.version, p.ami_id),
                Some(self.promotion_notice(image, p, &[], dry_run, now)),
            ),
            Decision::Defer { reason } => (reason.clone(), None),
            Decision::Ignore { reason } => (reason.clone(), None),
            Decision::AlreadyCurrent => {
                ("this image is already the promoted one".to_string(), None)
            }
            Decision::Block { reason } => {
                let text = reason.describe();
                let level = match reason {
                    crate::promotion::BlockReason::Findings { counts, .. }
                        if counts.critical > 0 =>
                    {
                        Level::Critical
                    }
                    _ => Level::Warning,
                };
                let body = Body::new(
                    "This image was built but is NOT promoted; the pointer is unchanged.",
                )
                .line("Image", &image.name)
                .line("Version", image.version)
                .line("Image ARN", &image.arn)
                .line("Why", &text)
                .line("AMIs", ami_list(image))
                .finish();
                let n = Notification::new(
                    &format!(
                        "Not promoted: {} {}: {}",
                        image.name,
                        image.version,
                        reason.code()
                    ),
                    body,
                    "image.promotion-blocked",
                    &self.pipeline_name(image),
                    level,
                )
                .with_attribute("reason", reason.code())
                .with_attribute("image_version", &image.version.to_string());
                (text, Some(n))
            }
            Decision::Stale { current } => {
                let text = format!(
                    "{} is older than the promoted {} ({}); the pointer never moves back",
                    image.version, current.version, current.ami_id
                );
                let body = Body::new(
                    "An older build finished after a newer one was promoted; it is not promoted.",
                )
                .line("Image ARN", &image.arn)
                .line("Promoted image", &current.image_arn)
                .line("Promoted AMI", &current.ami_id)
                .finish();
                let n = Notification::new(
                    &format!(
                        "Not promoted (older build): {} {}",
                        image.name, image.version
                    ),
                    body,
                    "image.promotion-stale",
                    &self.pipeline_name(image),
                    Level::Info,
                )
                .with_attribute("image_version", &image.version.to_string());
                (text, Some(n))
            }
            Decision::Alert { status, reason } => {
                let (word, event_type, level) = if status == "FAILED" {
                    ("FAILED", "image.build-failed", Level::Critical)
                } else {
                    ("was CANCELLED", "image.build-cancelled", Level::Warning)
                };
                let body = Body::new(&format!("An image build {word}."))
                    .line("Image", &image.name)
                    .line("Version", image.version)
                    .line("Image ARN", &image.arn)
                    .line("Reason", reason)
                    .line("Region", region)
                    .line("Account", account)
                    .finish();
                let n = Notification::new(
                    &format!("Image build {word}: {} {}", image.name, image.version),
                    body,
                    event_type,
                    &self.pipeline_name(image),
                    level,
                )
                .with_attribute("image_version", &image.version.to_string());
                (reason.clone(), Some(n))
            }
        };

        info!(image = %image.arn, decision = decision.label(), dry_run, %reason, "decided");
        let notice = if dry_run {
            notice
                .or_else(|| {
                    Some(Notification::new(
                        &format!(
                            "[dry run] {} {} {}",
                            decision.label(),
                            image.name,
                            image.version
                        ),
                        Body::new("DRY RUN: nothing was changed.")
                            .line("Image ARN", &image.arn)
                            .line("Decision", decision.label())
                            .line("Why", &reason)
                            .finish(),
                        "image.dry-run",
                        &self.pipeline_name(image),
                        Level::Info,
                    ))
                })
                .map(|n| n.with_attribute("planned", decision.label()))
        } else {
            notice
        };
        let notification_id = match notice {
            Some(n) => Some(sns::publish(&self.clients.sns, &self.config.topic_arn, &n).await?),
            None => None,
        };
        Ok(Outcome {
            decision: decision.label().into(),
            reason,
            image_arn: Some(image.arn.clone()),
            ami_id: image.local_ami(account, region).map(|a| a.ami_id.clone()),
            previous_ami: None,
            dry_run,
            notification_id,
            warnings: vec![],
        })
    }
}

fn ami_list(image: &ImageFacts) -> String {
    if image.amis.is_empty() {
        return "none".into();
    }
    image
        .amis
        .iter()
        .map(|a| format!("{} ({})", a.ami_id, a.region))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `arn:<partition>:imagebuilder:<region>:<account>:image/...`
fn region_and_account(arn: &str) -> (&str, &str) {
    let mut parts = arn.splitn(6, ':');
    let region = parts.nth(3).unwrap_or_default();
    let account = parts.next().unwrap_or_default();
    (region, account)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_and_account_come_from_the_image_arn() {
        assert_eq!(
            region_and_account("arn:aws:imagebuilder:eu-west-1:123456789012:image/x/1.0.0/1"),
            ("eu-west-1", "123456789012")
        );
    }
}
