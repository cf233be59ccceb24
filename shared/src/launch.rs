//! The launch-host flow: work out what triggered the invocation, check the pointer's AMI, plan
//! each host, launch it, then follow its readiness for as long as the invocation allows and
//! hand the rest to a later invocation.
//!
//! Three triggers: a direct launch request, the promotion notification on the SNS topic (one
//! replacement per standing host), and a delayed readiness check from the queue.

use std::time::Duration;

use chrono::{DateTime, Utc};
use lambda_runtime::Diagnostic;
use serde::Serialize;
use serde_json::Value;
use tracing::{error, info, warn};

use crate::aws::{ec2, hosts, sns, ssm, AwsError, Clients};
use crate::config::{ConfigError, Env};
use crate::host::{
    assess_readiness, check_instance_type, guard, is_profile_not_yet_visible, launch_retry_delay,
    parse_request, parse_standing_hosts, plan_launch, plan_replacements, tags,
    valid_instance_type_format, ConnectionKit, GuardRefusal, HostSpec, LaunchAmi, LaunchSettings,
    ProbeResult, Readiness, ReadinessCheck, ReadinessObservation, Replacement, RequestDefaults,
    RequestError, REQUEST_FIELDS,
};
use crate::notify::{Body, Level, Notification};
use crate::promotion::timestamp;

/// The promotion notification launch-host acts on (message attribute `event_type`).
pub const PROMOTED_EVENT_TYPE: &str = "image.promoted";
/// Time kept free at the end of an invocation for the hand-off and the notification.
const INVOCATION_MARGIN: Duration = Duration::from_secs(20);

/// Settings of the launch-host function.
#[derive(Debug, Clone, PartialEq)]
pub struct LaunchConfig {
    pub pointer_parameter: String,
    pub topic_arn: String,
    /// Hosts launch only from AMIs this account owns.
    pub account_id: String,
    pub region: String,
    pub pipeline_name: String,
    pub settings: LaunchSettings,
    pub defaults: RequestDefaults,
    pub standing_hosts: Vec<HostSpec>,
    pub readiness_queue_url: String,
    /// How long one invocation follows readiness before handing off; zero hands off at once.
    pub readiness_wait: Duration,
    /// How long after launch a host may take to become ready.
    pub readiness_timeout: Duration,
    /// Delay of the queued readiness check (SQS allows at most 15 minutes).
    pub readiness_recheck: Duration,
    pub readiness_poll: Duration,
    pub terminate_unready: bool,
    /// How long RunInstances is retried while a new instance profile is not visible to EC2.
    pub profile_retry_budget: Duration,
}

impl LaunchConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let invalid =
            |name: &'static str, expected: &'static str, value: String| ConfigError::Invalid {
                name,
                expected,
                value,
            };
        let account_id = env.required("ACCOUNT_ID")?;
        if account_id.len() != 12 || !account_id.chars().all(|c| c.is_ascii_digit()) {
            return Err(invalid(
                "ACCOUNT_ID",
                "a 12-digit AWS account id",
                account_id,
            ));
        }
        let hours = env.number("DEFAULT_HOURS", 8)?;
        if !(1..=72).contains(&hours) {
            return Err(invalid(
                "DEFAULT_HOURS",
                "a whole number from 1 to 72",
                hours.to_string(),
            ));
        }
        let instance_type = env
            .required("DEFAULT_INSTANCE_TYPE")
            .unwrap_or_else(|_| "t3.large".into());
        let type_format = "EC2 instance types such as t3.large, separated by commas";
        valid_instance_type_format(&instance_type).map_err(|_| {
            invalid(
                "DEFAULT_INSTANCE_TYPE",
                "an EC2 instance type such as t3.large",
                instance_type.clone(),
            )
        })?;
        let allowed_instance_types: Vec<String> = match env.required("ALLOWED_INSTANCE_TYPES") {
            Ok(list) => list
                .split(',')
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
                .collect(),
            Err(_) => vec![],
        };
        for t in &allowed_instance_types {
            valid_instance_type_format(t)
                .map_err(|_| invalid("ALLOWED_INSTANCE_TYPES", type_format, t.clone()))?;
        }
        let defaults = RequestDefaults {
            hours: hours as u32,
            instance_type,
            allowed_instance_types,
        };
        if !defaults.allowed_instance_types.is_empty()
            && !defaults
                .allowed_instance_types
                .contains(&defaults.instance_type)
        {
            return Err(invalid(
                "DEFAULT_INSTANCE_TYPE",
                "one of ALLOWED_INSTANCE_TYPES",
                defaults.instance_type.clone(),
            ));
        }
        let standing_text = env
            .required("STANDING_HOSTS")
            .unwrap_or_else(|_| "[]".into());
        let standing_hosts = parse_standing_hosts(&standing_text, &defaults).map_err(|reason| {
            ConfigError::Invalid {
                name: "STANDING_HOSTS",
                expected: "a JSON array like \
                           [{\"owner\":\"alice\",\"team\":\"platform\",\"instance_type\":\"t3.large\"}]",
                value: reason,
            }
        })?;
        let root_volume_gib = env.number("ROOT_VOLUME_GIB", 30)?;
        if !(8..=1024).contains(&root_volume_gib) {
            return Err(invalid(
                "ROOT_VOLUME_GIB",
                "a size from 8 to 1024 GiB",
                root_volume_gib.to_string(),
            ));
        }
        let recheck = env.number("READINESS_RECHECK_SECONDS", 60)?;
        if recheck > 900 {
            return Err(invalid(
                "READINESS_RECHECK_SECONDS",
                "at most 900 (the SQS delay limit)",
                recheck.to_string(),
            ));
        }

        Ok(LaunchConfig {
            pointer_parameter: env.required("POINTER_PARAMETER")?,
            topic_arn: env.required("TOPIC_ARN")?,
            account_id,
            region: env.required("AWS_REGION")?,
            pipeline_name: env
                .required("PIPELINE_NAME")
                .unwrap_or_else(|_| "vscode-host".into()),
            settings: LaunchSettings {
                subnet_id: env.required("HOST_SUBNET_ID")?,
                security_group_id: env.required("HOST_SECURITY_GROUP_ID")?,
                instance_profile: env.required("HOST_INSTANCE_PROFILE")?,
                root_volume_gib: root_volume_gib as i32,
            },
            defaults,
            standing_hosts,
            readiness_queue_url: env.required("READINESS_QUEUE_URL")?,
            readiness_wait: Duration::from_secs(env.number("READINESS_WAIT_SECONDS", 0)?),
            readiness_timeout: Duration::from_secs(env.number("READINESS_TIMEOUT_SECONDS", 900)?),
            readiness_recheck: Duration::from_secs(recheck),
            readiness_poll: Duration::from_secs(env.number("READINESS_POLL_SECONDS", 10)?),
            terminate_unready: env.flag("TERMINATE_UNREADY", true)?,
            profile_retry_budget: Duration::from_secs(env.number("PROFILE_RETRY_SECONDS", 60)?),
        })
    }
}

// ---- triggers ------------------------------------------------------------------------------

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TriggerError {
    #[error(
        "expected one of three shapes: a launch request (a JSON object with the fields \
         {fields}), an SNS \
         event whose record carries the promotion notification, or an SQS event of readiness \
         checks; got {0}",
        fields = REQUEST_FIELDS.join(", ")
    )]
    Unrecognised(String),
    #[error(
        "got an EventBridge event (`{0}`); launch-host is triggered by the promotion notification \
         on the SNS topic, a launch request, or a readiness check, not by EventBridge"
    )]
    EventBridge(String),
    #[error("SQS message {message_id} is not a readiness check ({reason})")]
    NotAReadinessCheck { message_id: String, reason: String },
}

/// What an invocation was asked to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    Request(crate::host::HostRequest),
    /// A promotion notification; the id of the SNS message keys the launches' idempotency.
    Promotion {
        message_id: String,
    },
    Readiness(Vec<ReadinessCheck>),
    Ignore {
        reason: String,
    },
}

fn describe(payload: &Value) -> String {
    match payload {
        Value::Object(map) => {
            let keys: Vec<&str> = map.keys().map(String::as_str).take(8).collect();
            format!("an object with keys [{}]", keys.join(", "))
        }
        Value::Array(_) => "an array".into(),
        Value::String(_) => "a string".into(),
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

/// Recognises the payload's shape; a launch request is validated here too.
pub fn parse_trigger(payload: &Value, defaults: &RequestDefaults) -> Result<Trigger, LaunchError> {
    let unrecognised = || LaunchError::Trigger(TriggerError::Unrecognised(describe(payload)));
    let object = payload.as_object().ok_or_else(unrecognised)?;

    if let Some(records) = object.get("Records").and_then(Value::as_array) {
        let first = records.first().ok_or_else(unrecognised)?;
        if first.get("EventSource").and_then(Value::as_str) == Some("aws:sns") {
            let sns = &first["Sns"];
            let event_type = sns["MessageAttributes"]["event_type"]["Value"]
                .as_str()
                .unwrap_or("(none)");
            let message_id = sns["MessageId"].as_str().unwrap_or_default().to_string();
            if event_type != PROMOTED_EVENT_TYPE || message_id.is_empty() {
                return Ok(Trigger::Ignore {
                    reason: format!(
                        "SNS message of event_type {event_type}; only {PROMOTED_EVENT_TYPE} \
                         launches hosts"
                    ),
                });
            }
            return Ok(Trigger::Promotion { message_id });
        }
        if first.get("eventSource").and_then(Value::as_str) == Some("aws:sqs") {
            let checks = records
                .iter()
                .map(|r| {
                    let message_id = r["messageId"].as_str().unwrap_or("(no id)").to_string();
                    let body = r["body"].as_str().unwrap_or_default();
                    let check: ReadinessCheck = serde_json::from_str(body).map_err(|e| {
                        TriggerError::NotAReadinessCheck {
                            message_id: message_id.clone(),
                            reason: e.to_string(),
                        }
                    })?;
                    if check.kind != ReadinessCheck::KIND {
                        return Err(TriggerError::NotAReadinessCheck {
                            message_id,
                            reason: format!(
                                "kind is `{}`, expected `{}`",
                                check.kind,
                                ReadinessCheck::KIND
                            ),
                        });
                    }
                    Ok(check)
                })
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(Trigger::Readiness(checks));
        }
        return Err(unrecognised());
    }
    if let Some(detail_type) = object.get("detail-type").and_then(Value::as_str) {
        return Err(TriggerError::EventBridge(detail_type.to_string()).into());
    }
    if object.keys().any(|k| REQUEST_FIELDS.contains(&k.as_str())) {
        return Ok(Trigger::Request(parse_request(payload, defaults)?));
    }
    Err(unrecognised())
}

// ---- errors and outcome --------------------------------------------------------------------

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error(transparent)]
    Trigger(#[from] TriggerError),
    #[error("invalid launch request: {0}")]
    Request(#[from] RequestError),
    #[error("launch refused: {0}")]
    Refused(#[from] GuardRefusal),
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error(
        "RunInstances for {owner}/{team} still could not see instance profile {profile} after \
         {waited_secs}s; IAM changes usually appear within a minute, so check that it exists"
    )]
    ProfileNotVisible {
        owner: String,
        team: String,
        profile: String,
        waited_secs: u64,
    },
    #[error("{failed} of {total} host launches failed; first: {first}")]
    HostsFailed {
        failed: usize,
        total: usize,
        first: String,
    },
}

impl From<LaunchError> for Diagnostic {
    fn from(err: LaunchError) -> Diagnostic {
        let error_type = match &err {
            LaunchError::Trigger(_) => "InvalidEvent",
            LaunchError::Request(_) => "InvalidRequest",
            LaunchError::Refused(_) => "LaunchRefused",
            LaunchError::Aws(e) if e.is_transient() => "AwsTransient",
            LaunchError::Aws(_) => "AwsCallFailed",
            LaunchError::ProfileNotVisible { .. } => "InstanceProfileNotVisible",
            LaunchError::HostsFailed { .. } => "HostsFailed",
        };
        Diagnostic {
            error_type: error_type.into(),
            error_message: err.to_string(),
        }
    }
}

/// One host as this invocation left it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HostOutcome {
    pub owner: String,
    pub team: String,
    /// launched, already-launched, kept, ready, not-ready, pending, gone, failed
    pub action: String,
    pub instance_id: Option<String>,
    pub ami_id: Option<String>,
    pub expires_at: Option<String>,
    pub readiness: Option<String>,
    pub supersedes: Vec<String>,
    pub connection_kit: Option<String>,
    pub detail: Option<String>,
}

/// What one invocation did, returned to the caller and logged.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Outcome {
    pub trigger: String,
    pub decision: String,
    pub reason: String,
    pub hosts: Vec<HostOutcome>,
}

enum Settled {
    Ready,
    NeverReady { reason: String, terminated: bool },
    Gone { state: String },
    HandedOff { reason: String },
}

impl Settled {
    fn label(&self) -> &'static str {
        match self {
            Settled::Ready => tags::READY,
            Settled::NeverReady { .. } => tags::NOT_READY,
            Settled::Gone { .. } => "gone",
            Settled::HandedOff { .. } => tags::PENDING,
        }
    }
}

// ---- the flow ------------------------------------------------------------------------------

pub struct Launcher {
    pub config: LaunchConfig,
    pub clients: Clients,
    pub sqs: aws_sdk_sqs::Client,
    /// When the current invocation started: every host's wait is measured against the
    /// invocation's deadline from here, not from the start of its own launch.
    invocation_started: std::sync::Mutex<tokio::time::Instant>,
}

impl Launcher {
    pub fn new(config: LaunchConfig, clients: Clients, sqs: aws_sdk_sqs::Client) -> Self {
        Launcher {
            config,
            clients,
            sqs,
            invocation_started: std::sync::Mutex::new(tokio::time::Instant::now()),
        }
    }

    /// Handles one invocation payload. `request_id` is the Lambda request id (kept by Lambda
    /// across retries of an asynchronous event); `deadline` is when the invocation times out.
    pub async fn handle(
        &self,
        payload: &Value,
        request_id: &str,
        deadline: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<Outcome, LaunchError> {
        *self
            .invocation_started
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = tokio::time::Instant::now();
        match parse_trigger(payload, &self.config.defaults)? {
            Trigger::Ignore { reason } => {
                info!(%reason, "nothing to do");
                Ok(Outcome {
                    trigger: "sns".into(),
                    decision: "ignore".into(),
                    reason,
                    hosts: vec![],
                })
            }
            Trigger::Request(request) => {
                let trigger_id = request
                    .request_id
                    .clone()
                    .unwrap_or_else(|| request_id.to_string());
                let spec = &request.spec;
                info!(
                    owner = %spec.owner, team = %spec.team, hours = spec.hours,
                    instance_type = %spec.instance_type, trigger = %trigger_id, "launch requested"
                );
                let ami = self.source_ami(now).await??;
                let host = self
                    .launch(&request.spec, &ami, &trigger_id, vec![], deadline, now)
                    .await?;
                Ok(Outcome {
                    trigger: "request".into(),
                    decision: "launch".into(),
                    reason: format!(
                        "requested by {} for {}",
                        request.spec.owner, request.spec.team
                    ),
                    hosts: vec![host],
                })
            }
            Trigger::Promotion { message_id } => {
                self.replace_standing_hosts(&message_id, deadline, now)
                    .await
            }
            Trigger::Readiness(checks) => {
                let mut outcomes = Vec::new();
                for check in checks {
                    outcomes.push(self.follow_up(check, deadline, now).await?);
                }
                Ok(Outcome {
                    trigger: "readiness-check".into(),
                    decision: "check".into(),
                    reason: "readiness handed off by an earlier invocation".into(),
                    hosts: outcomes,
                })
            }
        }
    }

    /// Reads the pointer and runs the launch guard on the AMI it names.
    async fn source_ami(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Result<LaunchAmi, GuardRefusal>, LaunchError> {
        let pointer = &self.config.pointer_parameter;
        let value = ssm::read_pointer(&self.clients.ssm, pointer).await?;
        let ami = match &value {
            Some(ami_id) => ec2::describe_ami(&self.clients.ec2, ami_id).await?,
            None => None,
        };
        let verdict = guard(
            pointer,
            value.as_deref(),
            ami.as_ref(),
            &self.config.account_id,
            now,
        )
        .cloned();
        match &verdict {
            Ok(ami) => info!(pointer = %pointer, ami = %ami.ami_id, "launch guard passed"),
            Err(refusal) => {
                warn!(pointer = %pointer, reason = refusal.code(), %refusal, "launch guard refused")
            }
        }
        Ok(verdict)
    }

    async fn replace_standing_hosts(
        &self,
        message_id: &str,
        deadline: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<Outcome, LaunchError> {
        let outcome = |decision: &str, reason: String, hosts| Outcome {
            trigger: "promotion".into(),
            decision: decision.into(),
            reason,
            hosts,
        };
        if self.config.standing_hosts.is_empty() {
            info!(promotion = %message_id, "no standing hosts configured");
            return Ok(outcome(
                "nothing-to-do",
                "STANDING_HOSTS lists no hosts".into(),
                vec![],
            ));
        }

        let ami = match self.source_ami(now).await? {
            Ok(ami) => ami,
            Err(refusal) => {
                // Retrying would not change the AMI: report it to people and stop.
                let n = Notification::new(
                    &format!("Hosts NOT replaced: {}", refusal.code()),
                    Body::new(
                        "A promotion arrived, but no host is launched from the pointer's AMI.",
                    )
                    .line("Pointer", &self.config.pointer_parameter)
                    .line("Why", &refusal)
                    .finish(),
                    "host.launch-refused",
                    &self.config.pipeline_name,
                    Level::Warning,
                )
                .with_attribute("reason", refusal.code());
                sns::publish(&self.clients.sns, &self.config.topic_arn, &n).await?;
                return Ok(outcome("refused", refusal.to_string(), vec![]));
            }
        };

        let existing = hosts::managed_hosts(&self.clients.ec2).await?;
        let plan = plan_replacements(&self.config.standing_hosts, &existing, &ami.ami_id);
        let total = plan.len();
        let mut results = Vec::new();
        let mut failures = Vec::new();
        for step in plan {
            match step {
                Replacement::Keep { spec, instance_id } => {
                    info!(
                        owner = %spec.owner, team = %spec.team, instance = %instance_id,
                        ami = %ami.ami_id, "standing host already runs the promoted AMI"
                    );
                    results.push(HostOutcome {
                        action: "kept".into(),
                        instance_id: Some(instance_id),
                        ami_id: Some(ami.ami_id.clone()),
                        detail: Some("already runs the promoted AMI".into()),
                        ..HostOutcome::empty(&spec)
                    });
                }
                Replacement::Launch { spec, supersedes } => {
                    match self
                        .launch(&spec, &ami, message_id, supersedes, deadline, now)
                        .await
                    {
                        Ok(host) => results.push(host),
                        Err(e) => {
                            error!(
                                owner = %spec.owner, team = %spec.team, error = %e,
                                "standing host not replaced"
                            );
                            failures.push(e.to_string());
                            results.push(HostOutcome {
                                action: "failed".into(),
                                detail: Some(e.to_string()),
                                ..HostOutcome::empty(&spec)
                            });
                        }
                    }
                }
            }
        }
        if let Some(first) = failures.first() {
            // The event is retried; hosts already launched are found again by their token.
            return Err(LaunchError::HostsFailed {
                failed: failures.len(),
                total,
                first: first.clone(),
            });
        }
        Ok(outcome(
            "replace",
            format!("promotion {message_id}: pointer names {}", ami.ami_id),
            results,
        ))
    }

    /// Launches one host (or finds the one an earlier attempt launched), marks what it
    /// supersedes, follows its readiness and sends its owner the connection kit.
    async fn launch(
        &self,
        spec: &HostSpec,
        ami: &LaunchAmi,
        trigger_id: &str,
        supersedes: Vec<String>,
        deadline: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<HostOutcome, LaunchError> {
        let ec2 = &self.clients.ec2;
        let facts = hosts::describe_instance_type(ec2, &spec.instance_type).await?;
        check_instance_type(&spec.instance_type, facts.as_ref(), ami)?;
        let plan = plan_launch(
            spec,
            ami,
            &self.config.settings,
            trigger_id,
            supersedes,
            now,
        );

        // EC2 honours the client token for a while; the tag also covers an emulator or a retry
        // after the token expired.
        // A retry reports the host as it was launched: its expiry is the one on its tag.
        let (instance_id, action, expires_at) =
            match hosts::host_by_token(ec2, &plan.client_token).await? {
                Some(existing) => {
                    info!(
                        instance = %existing.instance_id, token = %plan.client_token,
                        "host already launched by an earlier attempt"
                    );
                    let expires_at = existing
                        .expires_at
                        .unwrap_or_else(|| timestamp(plan.expires_at));
                    (existing.instance_id, "already-launched", expires_at)
                }
                None => (
                    self.run_with_profile_retry(&plan).await?,
                    "launched",
                    timestamp(plan.expires_at),
                ),
            };
        info!(
            instance = %instance_id, owner = %spec.owner, team = %spec.team, ami = %plan.ami_id,
            instance_type = %spec.instance_type, %expires_at, action,
            "host launched"
        );

        if !plan.supersedes.is_empty() {
            let tag = vec![(tags::SUPERSEDED_BY.to_string(), instance_id.clone())];
            hosts::tag_hosts(ec2, &plan.supersedes, &tag).await?;
            let superseded = plan.supersedes.join(",");
            info!(instance = %instance_id, %superseded, "older hosts marked superseded");
        }

        let check = ReadinessCheck {
            kind: ReadinessCheck::KIND.into(),
            instance_id: instance_id.clone(),
            owner: spec.owner.clone(),
            team: spec.team.clone(),
            region: self.config.region.clone(),
            ami_id: plan.ami_id.clone(),
            expires_at,
            deadline: timestamp(
                now + chrono::Duration::from_std(self.config.readiness_timeout).unwrap_or_default(),
            ),
            command_id: None,
            attempt: 0,
        };
        let kit = kit_of(&check);
        let settled = self.settle(check, deadline, now).await?;
        let readiness_text = match &settled {
            Settled::Ready => "ready: VS Code answers".to_string(),
            Settled::HandedOff { reason } => {
                format!("starting ({reason}); another message follows when VS Code answers")
            }
            Settled::NeverReady { reason, terminated } => format!(
                "never became ready: {reason}{}",
                if *terminated {
                    "; the host was terminated"
                } else {
                    ""
                }
            ),
            Settled::Gone { state } => format!("the host is {state}"),
        };
        let n = self.host_notice(
            &kit,
            "host.launched",
            "Your VS Code host is launched.",
            &readiness_text,
            Level::Info,
        );
        let message = sns::publish(&self.clients.sns, &self.config.topic_arn, &n).await?;
        info!(instance = %instance_id, owner = %spec.owner, %message, "connection kit sent");

        Ok(HostOutcome {
            action: action.into(),
            instance_id: Some(instance_id),
            ami_id: Some(plan.ami_id.clone()),
            expires_at: Some(kit.expires_at.clone()),
            readiness: Some(settled.label().into()),
            supersedes: plan.supersedes.clone(),
            connection_kit: Some(kit.render()),
            detail: Some(readiness_text),
            ..HostOutcome::empty(spec)
        })
    }

    /// RunInstances, retrying only IAM's eventual consistency on a new instance profile. The
    /// same client token goes with every attempt, so no retry can launch a second host.
    async fn run_with_profile_retry(
        &self,
        plan: &crate::host::LaunchPlan,
    ) -> Result<String, LaunchError> {
        let started = tokio::time::Instant::now();
        let mut attempt = 0;
        loop {
            let err = match hosts::run_instance(&self.clients.ec2, plan).await {
                Ok(id) => return Ok(id),
                Err(e) => e,
            };
            if !is_profile_not_yet_visible(err.code.as_deref(), &err.message) {
                return Err(err.into());
            }
            let Some(pause) =
                launch_retry_delay(attempt, started.elapsed(), self.config.profile_retry_budget)
            else {
                return Err(LaunchError::ProfileNotVisible {
                    owner: plan.spec.owner.clone(),
                    team: plan.spec.team.clone(),
                    profile: plan.instance_profile.clone(),
                    waited_secs: started.elapsed().as_secs(),
                });
            };
            warn!(
                profile = %plan.instance_profile, attempt, pause_ms = pause.as_millis() as u64,
                "instance profile not visible to EC2 yet; retrying RunInstances"
            );
            tokio::time::sleep(pause).await;
            attempt += 1;
        }
    }

    /// A readiness check handed off by an earlier invocation.
    async fn follow_up(
        &self,
        check: ReadinessCheck,
        deadline: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<HostOutcome, LaunchError> {
        let spec_of = |c: &ReadinessCheck| HostSpec {
            owner: c.owner.clone(),
            team: c.team.clone(),
            hours: 0,
            instance_type: String::new(),
        };
        let spec = spec_of(&check);
        let kit = kit_of(&check);
        let host = hosts::describe_host(&self.clients.ec2, &check.instance_id).await?;
        if let Some(decided) = host
            .as_ref()
            .and_then(|h| h.readiness.clone())
            .filter(|r| r != tags::PENDING)
        {
            // A repeated delivery of a check that was already concluded.
            info!(instance = %check.instance_id, readiness = %decided, "readiness already decided");
            return Ok(HostOutcome {
                action: decided.clone(),
                instance_id: Some(check.instance_id.clone()),
                readiness: Some(decided),
                ..HostOutcome::empty(&spec)
            });
        }

        let settled = self.settle(check.clone(), deadline, now).await?;
        let (event_type, headline, text, level) = match &settled {
            Settled::Ready => (
                "host.ready",
                "Your VS Code host is ready.",
                "ready: VS Code answers".to_string(),
                Level::Info,
            ),
            Settled::NeverReady { reason, terminated } => (
                "host.not-ready",
                "Your VS Code host did not become ready.",
                format!(
                    "never became ready: {reason}{}",
                    if *terminated {
                        "; the host was terminated"
                    } else {
                        ""
                    }
                ),
                Level::Warning,
            ),
            Settled::Gone { state } => (
                "host.not-ready",
                "Your VS Code host is gone.",
                format!("the host is {state}"),
                Level::Warning,
            ),
            Settled::HandedOff { reason } => ("", "", reason.clone(), Level::Info),
        };
        if !event_type.is_empty() {
            let n = self.host_notice(&kit, event_type, headline, &text, level);
            sns::publish(&self.clients.sns, &self.config.topic_arn, &n).await?;
        }
        Ok(HostOutcome {
            action: settled.label().into(),
            instance_id: Some(check.instance_id.clone()),
            ami_id: Some(check.ami_id.clone()),
            expires_at: Some(check.expires_at.clone()),
            readiness: Some(settled.label().into()),
            connection_kit: matches!(settled, Settled::Ready).then(|| kit.render()),
            detail: Some(text),
            ..HostOutcome::empty(&spec)
        })
    }

    /// Follows readiness until the host is ready, never ready, or gone, or until this
    /// invocation's share of the wait is used up; then hands the check to a delayed message.
    async fn settle(
        &self,
        mut check: ReadinessCheck,
        deadline: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<Settled, LaunchError> {
        let started = tokio::time::Instant::now();
        let host_deadline = DateTime::parse_from_rfc3339(&check.deadline)
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or(now);
        let mut inline = self.config.readiness_wait;
        if let Some(deadline) = deadline {
            let spent = self
                .invocation_started
                .lock()
                .map(|s| s.elapsed())
                .unwrap_or_default();
            let clock = now + chrono::Duration::from_std(spent).unwrap_or_default();
            let left = (deadline - clock)
                .to_std()
                .unwrap_or_default()
                .saturating_sub(INVOCATION_MARGIN);
            inline = inline.min(left);
        }
        if inline.is_zero() {
            return self
                .hand_off(check, "readiness is followed by a later invocation")
                .await;
        }

        loop {
            let clock = now + chrono::Duration::from_std(started.elapsed()).unwrap_or_default();
            let seen = self.observe(&check).await?;
            let step = assess_readiness(&seen, host_deadline, clock);
            info!(instance = %check.instance_id, step = ?step, "readiness observed");
            match step {
                Readiness::Ready => {
                    self.tag_readiness(&check.instance_id, tags::READY).await?;
                    return Ok(Settled::Ready);
                }
                Readiness::Gone { state } => return Ok(Settled::Gone { state }),
                Readiness::NeverReady { reason } => {
                    self.tag_readiness(&check.instance_id, tags::NOT_READY)
                        .await?;
                    let terminated = self.config.terminate_unready;
                    if terminated {
                        hosts::terminate_host(&self.clients.ec2, &check.instance_id).await?;
                    }
                    let instance = &check.instance_id;
                    warn!(%instance, %reason, terminated, "host never became ready");
                    return Ok(Settled::NeverReady { reason, terminated });
                }
                Readiness::SendProbe => {
                    let command = hosts::send_probe(&self.clients.ssm, &check.instance_id).await?;
                    info!(instance = %check.instance_id, %command, "code-server probe sent");
                    check.command_id = Some(command);
                }
                Readiness::Wait { reason } => {
                    if started.elapsed() + self.config.readiness_poll >= inline {
                        return self.hand_off(check, &reason).await;
                    }
                }
            }
            tokio::time::sleep(self.config.readiness_poll).await;
        }
    }

    async fn observe(&self, check: &ReadinessCheck) -> Result<ReadinessObservation, LaunchError> {
        let host = hosts::describe_host(&self.clients.ec2, &check.instance_id).await?;
        let instance_state = host.map(|h| h.state);
        let ping = match instance_state.as_deref() {
            Some("running") => hosts::managed_ping(&self.clients.ssm, &check.instance_id).await?,
            _ => None,
        };
        let probe = match (&ping, &check.command_id) {
            (Some(p), Some(command)) if p == "Online" => {
                hosts::probe_result(&self.clients.ssm, command, &check.instance_id).await?
            }
            _ => ProbeResult::NotSent,
        };
        Ok(ReadinessObservation {
            instance_state,
            ping,
            probe,
        })
    }

    async fn hand_off(
        &self,
        mut check: ReadinessCheck,
        reason: &str,
    ) -> Result<Settled, LaunchError> {
        check.attempt += 1;
        let delay = self.config.readiness_recheck.as_secs() as i32;
        let message =
            hosts::send_readiness_check(&self.sqs, &self.config.readiness_queue_url, &check, delay)
                .await?;
        info!(
            instance = %check.instance_id, attempt = check.attempt, delay_secs = delay, %message,
            %reason, "readiness handed off"
        );
        Ok(Settled::HandedOff {
            reason: reason.to_string(),
        })
    }

    async fn tag_readiness(&self, instance_id: &str, value: &str) -> Result<(), LaunchError> {
        let tag = vec![(tags::READINESS.to_string(), value.to_string())];
        hosts::tag_hosts(&self.clients.ec2, &[instance_id.to_string()], &tag).await?;
        Ok(())
    }

    fn host_notice(
        &self,
        kit: &ConnectionKit,
        event_type: &str,
        headline: &str,
        readiness: &str,
        level: Level,
    ) -> Notification {
        let body = Body::new(headline)
            .line("Readiness", readiness)
            .paragraph(&kit.render())
            .finish();
        Notification::new(
            &format!(
                "VS Code host {} for {}/{}: {}",
                kit.instance_id, kit.owner, kit.team, event_type
            ),
            body,
            event_type,
            &self.config.pipeline_name,
            level,
        )
        .with_attribute("owner", &kit.owner)
        .with_attribute("team", &kit.team)
        .with_attribute("instance_id", &kit.instance_id)
    }
}

impl HostOutcome {
    fn empty(spec: &HostSpec) -> Self {
        HostOutcome {
            owner: spec.owner.clone(),
            team: spec.team.clone(),
            action: String::new(),
            instance_id: None,
            ami_id: None,
            expires_at: None,
            readiness: None,
            supersedes: vec![],
            connection_kit: None,
            detail: None,
        }
    }
}

fn kit_of(check: &ReadinessCheck) -> ConnectionKit {
    ConnectionKit {
        instance_id: check.instance_id.clone(),
        region: check.region.clone(),
        owner: check.owner.clone(),
        team: check.team.clone(),
        ami_id: check.ami_id.clone(),
        expires_at: check.expires_at.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base() -> Vec<(&'static str, &'static str)> {
        vec![
            ("POINTER_PARAMETER", "/vscode-host/ami/current"),
            ("TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:t"),
            ("ACCOUNT_ID", "123456789012"),
            ("AWS_REGION", "us-east-1"),
            ("HOST_SUBNET_ID", "subnet-1"),
            ("HOST_SECURITY_GROUP_ID", "sg-1"),
            ("HOST_INSTANCE_PROFILE", "host-profile"),
            (
                "READINESS_QUEUE_URL",
                "https://sqs.us-east-1.amazonaws.com/123456789012/q",
            ),
        ]
    }

    fn defaults() -> RequestDefaults {
        LaunchConfig::from_env(&Env::from_pairs(base()))
            .unwrap()
            .defaults
    }

    #[test]
    fn configuration_defaults_to_eight_hours_on_t3_large_and_hands_off_readiness_at_once() {
        let cfg = LaunchConfig::from_env(&Env::from_pairs(base())).unwrap();
        assert_eq!(cfg.defaults.hours, 8);
        assert_eq!(cfg.defaults.instance_type, "t3.large");
        assert!(cfg.readiness_wait.is_zero());
        assert!(cfg.terminate_unready);
        assert!(cfg.standing_hosts.is_empty());
    }

    #[test]
    fn bad_standing_hosts_stop_the_function_at_cold_start_with_the_reason() {
        let mut vars = base();
        vars.push((
            "STANDING_HOSTS",
            r#"[{"owner":"alice","team":"platform","hours":0}]"#,
        ));
        let err = LaunchConfig::from_env(&Env::from_pairs(vars))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("STANDING_HOSTS") && err.contains("from 1 to 72"),
            "{err}"
        );
    }

    #[test]
    fn a_default_instance_type_outside_the_allow_list_is_refused() {
        let mut vars = base();
        vars.push(("ALLOWED_INSTANCE_TYPES", "t3.xlarge, m7i.large"));
        let err = LaunchConfig::from_env(&Env::from_pairs(vars))
            .unwrap_err()
            .to_string();
        assert!(err.contains("DEFAULT_INSTANCE_TYPE"), "{err}");
    }

    #[test]
    fn a_request_body_is_a_launch_request() {
        let t = parse_trigger(
            &json!({"owner": "alice", "team": "platform", "hours": 4}),
            &defaults(),
        )
        .unwrap();
        assert!(matches!(t, Trigger::Request(r) if r.spec.hours == 4));
    }

    #[test]
    fn a_promotion_notification_from_sns_is_a_promotion_and_others_are_ignored() {
        let record = |event_type: &str| {
            json!({"Records": [{"EventSource": "aws:sns", "Sns": {
            "MessageId": "m-1", "Message": "...",
            "MessageAttributes": {"event_type": {"Type": "String", "Value": event_type}}}}]})
        };
        assert_eq!(
            parse_trigger(&record("image.promoted"), &defaults()).unwrap(),
            Trigger::Promotion {
                message_id: "m-1".into()
            }
        );
        assert!(matches!(
            parse_trigger(&record("image.dry-run"), &defaults()).unwrap(),
            Trigger::Ignore { .. }
        ));
    }

    #[test]
    fn an_unknown_shape_gets_an_error_naming_the_three_accepted_shapes() {
        for payload in [
            json!({"hello": 1}),
            json!([1]),
            json!("owner"),
            json!({"Records": []}),
        ] {
            let err = parse_trigger(&payload, &defaults())
                .unwrap_err()
                .to_string();
            assert!(err.contains("one of three shapes"), "{err}");
            assert!(
                err.contains("launch request") && err.contains("SNS") && err.contains("SQS"),
                "{err}"
            );
        }
        let eb =
            json!({"source": "aws.ssm", "detail-type": "Parameter Store Change", "detail": {}});
        assert!(parse_trigger(&eb, &defaults())
            .unwrap_err()
            .to_string()
            .contains("not by EventBridge"));
    }

    #[test]
    fn an_sqs_message_that_is_not_a_readiness_check_is_refused() {
        let record = json!({"eventSource": "aws:sqs", "messageId": "q-1", "body": "{\"x\":1}"});
        let payload = json!({ "Records": [record] });
        let err = parse_trigger(&payload, &defaults())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("q-1") && err.contains("not a readiness check"),
            "{err}"
        );
    }

    #[test]
    fn errors_map_to_stable_diagnostic_types() {
        let d: Diagnostic = LaunchError::Request(RequestError::BadHours("0".into())).into();
        assert_eq!(d.error_type, "InvalidRequest");
        let d: Diagnostic = LaunchError::Refused(GuardRefusal::Disabled {
            ami_id: "ami-1".into(),
        })
        .into();
        assert_eq!(d.error_type, "LaunchRefused");
        assert!(d.error_message.contains("ami-1 is disabled"));
    }
}
