//! Hosts: VS Code instances launched from the promoted AMI. Pure decisions only: what a launch
//! request means, whether the pointer's AMI may be launched, the exact launch settings, which
//! standing hosts need a replacement, whether a host is ready, and the connection kit its owner
//! receives. No I/O and no clock; callers pass the time in.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::promotion::{tags as ami_tags, timestamp};

/// code-server listens here on the host's loopback interface, and nowhere else.
pub const CODE_SERVER_PORT: u16 = 8080;
/// The unprivileged account that runs code-server; Remote-SSH logs in as this user.
pub const HOST_USER: &str = "vscode";
pub const MIN_HOURS: i64 = 1;
pub const MAX_HOURS: i64 = 72;

/// Tag keys this project writes on hosts (instances, their volumes and network interfaces).
pub mod tags {
    pub use crate::promotion::tags::{MANAGED_BY, MANAGER, SOURCE_IMAGE, SUPERSEDED_BY};
    pub const NAME: &str = "Name";
    pub const OWNER: &str = "owner";
    pub const TEAM: &str = "team";
    pub const EXPIRES_AT: &str = "expires-at";
    pub const SOURCE_AMI: &str = "source-ami";
    /// The idempotency token the host was launched with, so a retry finds it again.
    pub const LAUNCH_TOKEN: &str = "launch-token";
    pub const READINESS: &str = "readiness";

    pub const PENDING: &str = "pending";
    pub const READY: &str = "ready";
    pub const NOT_READY: &str = "not-ready";
}

// ---- requests ------------------------------------------------------------------------------

/// Fields a direct launch request may carry.
pub const REQUEST_FIELDS: [&str; 5] = ["owner", "team", "hours", "instance_type", "request_id"];

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RequestError {
    #[error("expected the launch request to be a JSON object, got {0}")]
    NotAnObject(String),
    #[error(
        "unknown field `{field}` in the launch request; expected only {}",
        REQUEST_FIELDS.join(", ")
    )]
    UnknownField { field: String },
    #[error(
        "`{field}` must be a name of 2 to 63 characters: a lowercase letter, then lowercase \
         letters, digits, `.`, `_` or `-`; got {value}"
    )]
    BadName { field: &'static str, value: String },
    #[error("`hours` must be a whole number from {MIN_HOURS} to {MAX_HOURS}; got {0}")]
    BadHours(String),
    #[error(
        "`instance_type` must look like an EC2 instance type such as t3.large (family, a dot, \
         size); got {0}"
    )]
    BadInstanceTypeFormat(String),
    #[error("`request_id` must be 1 to 64 printable ASCII characters; got {0}")]
    BadRequestId(String),
    #[error("instance type {instance_type} is not offered by EC2 in this region")]
    UnknownInstanceType { instance_type: String },
    #[error("instance type {instance_type} is not allowed here; allowed: {}", allowed.join(", "))]
    InstanceTypeNotAllowed {
        instance_type: String,
        allowed: Vec<String>,
    },
    #[error(
        "instance type {instance_type} runs {} but AMI {ami_id} is built for {ami_architecture}",
        architectures.join(" or ")
    )]
    ArchitectureMismatch {
        instance_type: String,
        architectures: Vec<String>,
        ami_id: String,
        ami_architecture: String,
    },
    #[error("standing host #{index} in STANDING_HOSTS: {source}")]
    StandingHost {
        index: usize,
        source: Box<RequestError>,
    },
}

/// What a host is: whose it is, for how long, and how big. Validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostSpec {
    pub owner: String,
    pub team: String,
    pub hours: u32,
    pub instance_type: String,
}

/// A validated direct request; `request_id` makes a retried request launch the same host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRequest {
    pub spec: HostSpec,
    pub request_id: Option<String>,
}

/// Values a request may leave out, and the instance types configuration allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestDefaults {
    pub hours: u32,
    pub instance_type: String,
    /// Empty means every instance type EC2 offers.
    pub allowed_instance_types: Vec<String>,
}

/// `owner` and `team`: IAM-user-name-like, lowercase so that tags and session ARNs compare
/// exactly. The developer policy matches `owner` against `aws:username`.
pub fn valid_name(field: &'static str, value: &str) -> Result<String, RequestError> {
    let mut chars = value.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
    if first_ok && rest_ok && (2..=63).contains(&value.len()) {
        Ok(value.to_string())
    } else {
        Err(RequestError::BadName {
            field,
            value: format!("`{value}`"),
        })
    }
}

/// `family.size`, for example t3.large, m7i-flex.xlarge or u-6tb1.metal.
pub fn valid_instance_type_format(value: &str) -> Result<String, RequestError> {
    let bad = || RequestError::BadInstanceTypeFormat(format!("`{value}`"));
    let (family, size) = value.split_once('.').ok_or_else(bad)?;
    let family_ok = family.starts_with(|c: char| c.is_ascii_lowercase())
        && family.chars().any(|c| c.is_ascii_digit())
        && family
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    let size_ok = !size.is_empty()
        && size
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if family_ok && size_ok && value.len() <= 32 {
        Ok(value.to_string())
    } else {
        Err(bad())
    }
}

fn shown(value: &Value) -> String {
    match value {
        Value::String(s) => format!("`{s}`"),
        other => other.to_string(),
    }
}

fn string_field(field: &'static str, value: &Value) -> Result<String, RequestError> {
    value
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| match field {
            "instance_type" => RequestError::BadInstanceTypeFormat(shown(value)),
            "request_id" => RequestError::BadRequestId(shown(value)),
            _ => RequestError::BadName {
                field,
                value: shown(value),
            },
        })
}

fn hours_field(value: &Value) -> Result<u32, RequestError> {
    match value.as_i64() {
        Some(h) if (MIN_HOURS..=MAX_HOURS).contains(&h) => Ok(h as u32),
        _ => Err(RequestError::BadHours(shown(value))),
    }
}

/// Validates a host description: a direct request body or one entry of `STANDING_HOSTS`.
fn parse_spec(
    object: &serde_json::Map<String, Value>,
    defaults: &RequestDefaults,
    allowed_fields: &[&str],
) -> Result<HostSpec, RequestError> {
    if let Some(field) = object
        .keys()
        .find(|k| !allowed_fields.contains(&k.as_str()))
    {
        return Err(RequestError::UnknownField {
            field: field.clone(),
        });
    }
    let missing = Value::String(String::new());
    let owner = string_field("owner", object.get("owner").unwrap_or(&missing))?;
    let team = string_field("team", object.get("team").unwrap_or(&missing))?;
    let hours = match object.get("hours") {
        None | Some(Value::Null) => defaults.hours,
        Some(v) => hours_field(v)?,
    };
    let instance_type = match object.get("instance_type") {
        None | Some(Value::Null) => defaults.instance_type.clone(),
        Some(v) => string_field("instance_type", v)?,
    };
    let spec = HostSpec {
        owner: valid_name("owner", &owner)?,
        team: valid_name("team", &team)?,
        hours,
        instance_type: valid_instance_type_format(&instance_type)?,
    };
    allowed_instance_type(&spec.instance_type, &defaults.allowed_instance_types)?;
    Ok(spec)
}

/// Parses and validates a direct launch request body.
pub fn parse_request(
    payload: &Value,
    defaults: &RequestDefaults,
) -> Result<HostRequest, RequestError> {
    let object = payload
        .as_object()
        .ok_or_else(|| RequestError::NotAnObject(shown(payload)))?;
    let spec = parse_spec(object, defaults, &REQUEST_FIELDS)?;
    let request_id = match object.get("request_id") {
        None | Some(Value::Null) => None,
        Some(v) => {
            let id = string_field("request_id", v)?;
            if id.is_empty() || id.len() > 64 || !id.chars().all(|c| c.is_ascii_graphic()) {
                return Err(RequestError::BadRequestId(shown(v)));
            }
            Some(id)
        }
    };
    Ok(HostRequest { spec, request_id })
}

/// Parses `STANDING_HOSTS`: a JSON array of `{owner, team, instance_type?, hours?}`.
pub fn parse_standing_hosts(
    text: &str,
    defaults: &RequestDefaults,
) -> Result<Vec<HostSpec>, String> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| format!("a JSON array of {{owner, team, instance_type, hours}} ({e})"))?;
    let entries = value
        .as_array()
        .ok_or_else(|| "a JSON array of {owner, team, instance_type, hours}".to_string())?;
    let fields = ["owner", "team", "hours", "instance_type"];
    let mut specs: Vec<HostSpec> = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let object = entry.as_object().ok_or_else(|| {
            RequestError::StandingHost {
                index,
                source: Box::new(RequestError::NotAnObject(shown(entry))),
            }
            .to_string()
        })?;
        let spec = parse_spec(object, defaults, &fields).map_err(|source| {
            RequestError::StandingHost {
                index,
                source: Box::new(source),
            }
            .to_string()
        })?;
        if specs
            .iter()
            .any(|s| s.owner == spec.owner && s.team == spec.team)
        {
            return Err(format!(
                "at most one standing host per owner and team; {}/{} appears twice",
                spec.owner, spec.team
            ));
        }
        specs.push(spec);
    }
    Ok(specs)
}

fn allowed_instance_type(instance_type: &str, allowed: &[String]) -> Result<(), RequestError> {
    if allowed.is_empty() || allowed.iter().any(|a| a == instance_type) {
        Ok(())
    } else {
        Err(RequestError::InstanceTypeNotAllowed {
            instance_type: instance_type.to_string(),
            allowed: allowed.to_vec(),
        })
    }
}

/// What EC2 says about an instance type in this region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceTypeFacts {
    pub name: String,
    pub architectures: Vec<String>,
}

/// The instance type must exist here and run the AMI's architecture.
pub fn check_instance_type(
    instance_type: &str,
    facts: Option<&InstanceTypeFacts>,
    ami: &LaunchAmi,
) -> Result<(), RequestError> {
    let facts = facts.ok_or_else(|| RequestError::UnknownInstanceType {
        instance_type: instance_type.to_string(),
    })?;
    match &ami.architecture {
        Some(arch) if !facts.architectures.is_empty() && !facts.architectures.contains(arch) => {
            Err(RequestError::ArchitectureMismatch {
                instance_type: instance_type.to_string(),
                architectures: facts.architectures.clone(),
                ami_id: ami.ami_id.clone(),
                ami_architecture: arch.clone(),
            })
        }
        _ => Ok(()),
    }
}

// ---- launch guard --------------------------------------------------------------------------

/// The AMI a launch would use, as EC2 describes it.
pub type LaunchAmi = crate::image::AmiFacts;

/// Why no host is launched from the pointer's AMI.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardRefusal {
    #[error("pointer {pointer} does not exist yet, so there is no promoted AMI to launch")]
    NoPointer { pointer: String },
    #[error("AMI {ami_id} named by the pointer is unknown to EC2 (deregistered?)")]
    Missing { ami_id: String },
    #[error("AMI {ami_id} is deprecated since {since}")]
    Deprecated { ami_id: String, since: String },
    #[error("AMI {ami_id} is disabled")]
    Disabled { ami_id: String },
    #[error("AMI {ami_id} is in state `{state}`, not `available`")]
    NotAvailable { ami_id: String, state: String },
    #[error("AMI {ami_id} is quarantined ({reason})")]
    Quarantined { ami_id: String, reason: String },
    #[error("AMI {ami_id} is owned by account {owner}, not this account {account}")]
    NotOwned {
        ami_id: String,
        owner: String,
        account: String,
    },
}

impl GuardRefusal {
    pub fn code(&self) -> &'static str {
        match self {
            GuardRefusal::NoPointer { .. } => "no-pointer",
            GuardRefusal::Missing { .. } => "ami-missing",
            GuardRefusal::Deprecated { .. } => "ami-deprecated",
            GuardRefusal::Disabled { .. } => "ami-disabled",
            GuardRefusal::NotAvailable { .. } => "ami-not-available",
            GuardRefusal::Quarantined { .. } => "ami-quarantined",
            GuardRefusal::NotOwned { .. } => "ami-not-owned",
        }
    }
}

/// Whether a host may be launched from `ami`, the AMI the pointer names.
pub fn guard<'a>(
    pointer: &str,
    pointer_value: Option<&str>,
    ami: Option<&'a LaunchAmi>,
    account: &str,
    now: DateTime<Utc>,
) -> Result<&'a LaunchAmi, GuardRefusal> {
    let ami_id = pointer_value.ok_or_else(|| GuardRefusal::NoPointer {
        pointer: pointer.into(),
    })?;
    let ami = ami.ok_or_else(|| GuardRefusal::Missing {
        ami_id: ami_id.into(),
    })?;
    let id = || ami.ami_id.clone();

    if let Some(reason) = ami.tag(ami_tags::QUARANTINE) {
        let reason = if reason.trim().is_empty() {
            "no reason given"
        } else {
            reason
        };
        return Err(GuardRefusal::Quarantined {
            ami_id: id(),
            reason: reason.into(),
        });
    }
    if ami.owner_id.as_deref() != Some(account) {
        return Err(GuardRefusal::NotOwned {
            ami_id: id(),
            owner: ami.owner_id.clone().unwrap_or_else(|| "(unknown)".into()),
            account: account.into(),
        });
    }
    if ami.state == "disabled" {
        return Err(GuardRefusal::Disabled { ami_id: id() });
    }
    if ami.state != "available" {
        return Err(GuardRefusal::NotAvailable {
            ami_id: id(),
            state: ami.state.clone(),
        });
    }
    if let Some(since) = &ami.deprecation_time {
        // An unreadable time is treated as deprecated: refusing is the safe side.
        let passed = DateTime::parse_from_rfc3339(since)
            .map(|t| t <= now)
            .unwrap_or(true);
        if passed {
            return Err(GuardRefusal::Deprecated {
                ami_id: id(),
                since: since.clone(),
            });
        }
    }
    Ok(ami)
}

// ---- launch plan ---------------------------------------------------------------------------

/// Where and how hosts start; fixed by the deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchSettings {
    pub subnet_id: String,
    pub security_group_id: String,
    pub instance_profile: String,
    pub root_volume_gib: i32,
}

/// Every RunInstances setting of one host. The security properties are not options: no public
/// address, no key pair, IMDSv2 with one hop, an encrypted gp3 root volume, and an OS shutdown
/// that terminates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchPlan {
    pub spec: HostSpec,
    pub ami_id: String,
    pub client_token: String,
    pub subnet_id: String,
    pub security_group_id: String,
    pub instance_profile: String,
    pub root_device_name: String,
    pub root_volume_gib: i32,
    pub metadata_hop_limit: i32,
    pub expires_at: DateTime<Utc>,
    /// Tags for the instance, its volume and its network interface.
    pub tags: Vec<(String, String)>,
    /// Hosts this one replaces; tagged `superseded-by` once it exists.
    pub supersedes: Vec<String>,
}

/// A deterministic idempotency token (EC2 allows 64 ASCII characters): the same trigger and
/// host always give the same token, so a retry returns the instance launched the first time.
pub fn client_token(trigger_id: &str, spec: &HostSpec) -> String {
    // FNV-1a, twice with different offsets, for 128 bits without a hashing dependency.
    let fnv = |offset: u64| {
        let parts = [trigger_id, &spec.owner, &spec.team, &spec.instance_type];
        let mut hash = offset;
        for byte in parts.join("\u{1f}").bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        hash
    };
    format!(
        "vscode-host-{:016x}{:016x}",
        fnv(0xcbf2_9ce4_8422_2325),
        fnv(0x6c62_272e_07bb_0142)
    )
}

pub fn plan_launch(
    spec: &HostSpec,
    ami: &LaunchAmi,
    settings: &LaunchSettings,
    trigger_id: &str,
    supersedes: Vec<String>,
    now: DateTime<Utc>,
) -> LaunchPlan {
    let expires_at = now + Duration::hours(i64::from(spec.hours));
    let client_token = client_token(trigger_id, spec);
    let source_image = ami
        .tag(ami_tags::SOURCE_IMAGE)
        .unwrap_or("unknown")
        .to_string();
    let tags = vec![
        (
            tags::NAME.into(),
            format!("vscode-{}-{}", spec.owner, spec.team),
        ),
        (tags::MANAGED_BY.into(), tags::MANAGER.into()),
        (tags::OWNER.into(), spec.owner.clone()),
        (tags::TEAM.into(), spec.team.clone()),
        (tags::EXPIRES_AT.into(), timestamp(expires_at)),
        (tags::SOURCE_AMI.into(), ami.ami_id.clone()),
        (tags::SOURCE_IMAGE.into(), source_image),
        (tags::LAUNCH_TOKEN.into(), client_token.clone()),
        (tags::READINESS.into(), tags::PENDING.into()),
    ];
    LaunchPlan {
        spec: spec.clone(),
        ami_id: ami.ami_id.clone(),
        client_token,
        subnet_id: settings.subnet_id.clone(),
        security_group_id: settings.security_group_id.clone(),
        instance_profile: settings.instance_profile.clone(),
        // Amazon Linux 2023 AMIs use /dev/xvda; the AMI's own value wins so that the mapping
        // replaces the root volume instead of adding a second one.
        root_device_name: ami
            .root_device_name
            .clone()
            .unwrap_or_else(|| "/dev/xvda".into()),
        root_volume_gib: settings.root_volume_gib,
        metadata_hop_limit: 1,
        expires_at,
        tags,
        supersedes,
    }
}

/// Whether a RunInstances error is IAM's eventual consistency: an instance profile created
/// moments ago is not yet visible to EC2. Only this error is retried by the launcher.
pub fn is_profile_not_yet_visible(code: Option<&str>, message: &str) -> bool {
    code == Some("InvalidParameterValue") && message.contains("Invalid IAM Instance Profile")
}

/// The pause before launch attempt `attempt + 1` (1 s, 2 s, 4 s, then 8 s), or `None` when it
/// would not fit in `budget`.
pub fn launch_retry_delay(
    attempt: u32,
    elapsed: std::time::Duration,
    budget: std::time::Duration,
) -> Option<std::time::Duration> {
    let delay = std::time::Duration::from_secs(1 << attempt.min(3));
    (elapsed + delay <= budget).then_some(delay)
}

// ---- replacements after a promotion --------------------------------------------------------

/// What EC2 reports about a host, read from its tags and state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HostFacts {
    pub instance_id: String,
    pub state: String,
    pub owner: Option<String>,
    pub team: Option<String>,
    pub source_ami: Option<String>,
    pub superseded_by: Option<String>,
    pub expires_at: Option<String>,
    pub launch_token: Option<String>,
    pub readiness: Option<String>,
}

impl HostFacts {
    /// Running or able to run again; a superseded host no longer counts.
    pub fn is_standing(&self) -> bool {
        ["pending", "running", "stopping", "stopped"].contains(&self.state.as_str())
            && self.superseded_by.is_none()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replacement {
    Launch {
        spec: HostSpec,
        supersedes: Vec<String>,
    },
    Keep {
        spec: HostSpec,
        instance_id: String,
    },
}

/// For each standing host in configuration: launch one from `ami_id` unless a host of that
/// owner and team already runs it; the hosts it replaces are listed.
pub fn plan_replacements(
    standing: &[HostSpec],
    hosts: &[HostFacts],
    ami_id: &str,
) -> Vec<Replacement> {
    standing
        .iter()
        .map(|spec| {
            let theirs: Vec<&HostFacts> = hosts
                .iter()
                .filter(|h| h.is_standing())
                .filter(|h| h.owner.as_deref() == Some(&spec.owner))
                .filter(|h| h.team.as_deref() == Some(&spec.team))
                .collect();
            match theirs
                .iter()
                .find(|h| h.source_ami.as_deref() == Some(ami_id))
            {
                Some(current) => Replacement::Keep {
                    spec: spec.clone(),
                    instance_id: current.instance_id.clone(),
                },
                None => Replacement::Launch {
                    spec: spec.clone(),
                    supersedes: theirs.iter().map(|h| h.instance_id.clone()).collect(),
                },
            }
        })
        .collect()
}

// ---- readiness -----------------------------------------------------------------------------

/// The outcome of the probe that asks code-server for its health page through SSM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeResult {
    NotSent,
    Pending,
    Passed,
    Failed { detail: String },
}

/// What was seen of a host on one readiness check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadinessObservation {
    /// EC2 instance state; `None` when EC2 no longer knows the instance.
    pub instance_state: Option<String>,
    /// SSM `PingStatus` (`Online`, `ConnectionLost`, `Inactive`); `None` when not managed yet.
    pub ping: Option<String>,
    pub probe: ProbeResult,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// Managed and online: ask code-server now.
    SendProbe,
    Wait {
        reason: String,
    },
    NeverReady {
        reason: String,
    },
    /// The instance is gone or going; nothing to wait for.
    Gone {
        state: String,
    },
}

pub fn assess_readiness(
    obs: &ReadinessObservation,
    deadline: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Readiness {
    let state = match obs.instance_state.as_deref() {
        None => {
            return Readiness::Gone {
                state: "unknown to EC2".into(),
            }
        }
        Some(s @ ("shutting-down" | "terminated")) => return Readiness::Gone { state: s.into() },
        Some(s) => s,
    };
    if obs.probe == ProbeResult::Passed {
        return Readiness::Ready;
    }

    let (next, reason) = if state != "running" {
        (None, format!("instance is {state}"))
    } else {
        match obs.ping.as_deref() {
            None => (None, "instance is not registered with SSM yet".to_string()),
            Some("Online") => match &obs.probe {
                ProbeResult::Pending => (None, "code-server probe is still running".to_string()),
                ProbeResult::Failed { detail } => (
                    Some(Readiness::SendProbe),
                    format!("code-server did not answer on 127.0.0.1:{CODE_SERVER_PORT}: {detail}"),
                ),
                _ => (
                    Some(Readiness::SendProbe),
                    "code-server was not asked yet".to_string(),
                ),
            },
            Some(other) => (None, format!("SSM agent reports {other}")),
        }
    };
    if now >= deadline {
        return Readiness::NeverReady {
            reason: format!("not ready by {}: {reason}", timestamp(deadline)),
        };
    }
    next.unwrap_or(Readiness::Wait { reason })
}

/// The shell script the probe runs on the host through `AWS-RunShellScript`.
pub fn probe_script() -> Vec<String> {
    vec![format!(
        "curl -fsS --max-time 5 -o /dev/null http://127.0.0.1:{CODE_SERVER_PORT}/healthz"
    )]
}

/// The hand-off: a readiness check that did not fit in one invocation, carried by a delayed
/// queue message to the next one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadinessCheck {
    /// Always [`ReadinessCheck::KIND`]; tells this message apart from anything else.
    pub kind: String,
    pub instance_id: String,
    pub owner: String,
    pub team: String,
    pub region: String,
    pub ami_id: String,
    pub expires_at: String,
    /// When the host counts as never ready (RFC 3339).
    pub deadline: String,
    /// The probe command sent on an earlier check, if any.
    pub command_id: Option<String>,
    pub attempt: u32,
}

impl ReadinessCheck {
    pub const KIND: &'static str = "host.readiness-check";
}

// ---- connection kit ------------------------------------------------------------------------

/// Everything the owner needs to reach a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectionKit {
    pub instance_id: String,
    pub region: String,
    pub owner: String,
    pub team: String,
    pub ami_id: String,
    pub expires_at: String,
}

impl ConnectionKit {
    /// The ssh host alias of the block in [`ConnectionKit::ssh_config`].
    pub fn alias(&self) -> String {
        format!("vscode-{}-{}", self.owner, self.team)
    }

    pub fn port_forward_command(&self) -> String {
        format!(
            "aws ssm start-session --region {} --target {} \
             --document-name AWS-StartPortForwardingSession \
             --parameters '{{\"portNumber\":[\"{CODE_SERVER_PORT}\"],\"localPortNumber\":[\"{CODE_SERVER_PORT}\"]}}'",
            self.region, self.instance_id
        )
    }

    // Limitation: nothing here caps the time a developer writes into `expires-at`; the tag is
    // trusted as written until something enforces the maximum.
    pub fn extend_command(&self) -> String {
        format!(
            "aws ec2 create-tags --region {} --resources {} --tags Key={},Value=<a later ISO-8601 \
             UTC time than {}>",
            self.region,
            self.instance_id,
            tags::EXPIRES_AT,
            self.expires_at
        )
    }

    /// An `~/.ssh/config` block: the ProxyCommand pushes the developer's public key for 60
    /// seconds with EC2 Instance Connect, then tunnels ssh through `AWS-StartSSHSession`.
    pub fn ssh_config(&self) -> String {
        let region = &self.region;
        format!(
            "Host {alias}\n\
             \x20 HostName {id}\n\
             \x20 User {HOST_USER}\n\
             \x20 IdentityFile ~/.ssh/id_ed25519\n\
             \x20 ProxyCommand sh -c \"aws ec2-instance-connect send-ssh-public-key --region {region} \
             --instance-id %h --instance-os-user %r --ssh-public-key file://~/.ssh/id_ed25519.pub \
             >/dev/null && aws ssm start-session --region {region} --target %h \
             --document-name AWS-StartSSHSession --parameters portNumber=%p\"\n",
            alias = self.alias(),
            id = self.instance_id,
        )
    }

    /// The kit as plain text, for the notification body and the demo.
    pub fn render(&self) -> String {
        let indent = |text: &str| {
            text.lines()
                .map(|l| format!("    {l}"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        format!(
            "Instance: {id}\nRegion: {region}\nOwner: {owner}\nTeam: {team}\nAMI: {ami}\n\
             Expires at: {expires} (terminate the host when you are done; nothing removes \
             expired hosts automatically yet)\n\n\
             Extend it (at most {MAX_HOURS} hours ahead):\n    {extend}\n\n\
             Browser IDE: run this, then open http://localhost:{CODE_SERVER_PORT}\n    {forward}\n\n\
             VS Code Remote-SSH: add this to ~/.ssh/config, then connect to `{alias}`\n{ssh}\n\n\
             Needs the AWS CLI v2 and the Session Manager plugin; no port is open on the host.\n",
            id = self.instance_id,
            region = self.region,
            owner = self.owner,
            team = self.team,
            ami = self.ami_id,
            expires = self.expires_at,
            extend = self.extend_command(),
            forward = self.port_forward_command(),
            alias = self.alias(),
            ssh = indent(&self.ssh_config()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn defaults() -> RequestDefaults {
        RequestDefaults {
            hours: 8,
            instance_type: "t3.large".into(),
            allowed_instance_types: vec![],
        }
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn ami() -> LaunchAmi {
        LaunchAmi {
            ami_id: "ami-0123456789abcdef0".into(),
            state: "available".into(),
            owner_id: Some("123456789012".into()),
            deprecation_time: None,
            root_device_name: Some("/dev/xvda".into()),
            architecture: Some("x86_64".into()),
            tags: vec![(
                ami_tags::SOURCE_IMAGE.into(),
                "arn:aws:imagebuilder:image/x/1.0.0/1".into(),
            )],
        }
    }

    fn spec(owner: &str, team: &str) -> HostSpec {
        HostSpec {
            owner: owner.into(),
            team: team.into(),
            hours: 8,
            instance_type: "t3.large".into(),
        }
    }

    fn guard_now(a: &LaunchAmi) -> Result<String, GuardRefusal> {
        guard(
            "/p",
            Some(&a.ami_id),
            Some(a),
            "123456789012",
            at("2026-12-04T12:00:00Z"),
        )
        .map(|a| a.ami_id.clone())
    }

    #[test]
    fn a_request_with_only_owner_and_team_gets_the_defaults() {
        let r = parse_request(&json!({"owner": "alice", "team": "platform"}), &defaults()).unwrap();
        assert_eq!(r.spec, spec("alice", "platform"));
        assert_eq!(r.request_id, None);
    }

    #[test]
    fn a_full_request_is_kept_as_given() {
        let body = json!({"owner": "bob.smith", "team": "data-eng", "hours": 72,
                          "instance_type": "m7i-flex.xlarge", "request_id": "ticket-42"});
        let r = parse_request(&body, &defaults()).unwrap();
        assert_eq!(r.spec.hours, 72);
        assert_eq!(r.spec.instance_type, "m7i-flex.xlarge");
        assert_eq!(r.request_id.as_deref(), Some("ticket-42"));
    }

    #[test]
    fn owners_that_are_not_lowercase_user_names_are_refused_with_the_format() {
        for owner in [
            "Alice",
            "a",
            "1alice",
            "alice smith",
            "alice@example.com",
            "",
        ] {
            let err = parse_request(&json!({"owner": owner, "team": "platform"}), &defaults())
                .unwrap_err();
            assert!(
                matches!(err, RequestError::BadName { field: "owner", .. }),
                "{owner}: {err}"
            );
            assert!(err.to_string().contains("lowercase letter"), "{err}");
        }
    }

    #[test]
    fn zero_negative_fractional_and_too_many_hours_are_refused() {
        for hours in [json!(0), json!(-3), json!(1.5), json!(73), json!("8")] {
            let err = parse_request(
                &json!({"owner": "alice", "team": "t1", "hours": hours}),
                &defaults(),
            )
            .unwrap_err();
            assert!(matches!(err, RequestError::BadHours(_)), "{err}");
            assert!(err.to_string().contains("from 1 to 72"), "{err}");
        }
    }

    #[test]
    fn malformed_instance_types_are_refused_before_asking_ec2() {
        for t in [
            "large",
            "t3.",
            ".large",
            "T3.LARGE",
            "t3.large; rm -rf /",
            "t.large",
        ] {
            let err = parse_request(
                &json!({"owner": "alice", "team": "t1", "instance_type": t}),
                &defaults(),
            )
            .unwrap_err();
            assert!(
                matches!(err, RequestError::BadInstanceTypeFormat(_)),
                "{t}: {err}"
            );
        }
    }

    #[test]
    fn an_instance_type_outside_the_allow_list_is_refused_with_the_list() {
        let mut d = defaults();
        d.allowed_instance_types = vec!["t3.large".into(), "t3.xlarge".into()];
        let err = parse_request(
            &json!({"owner": "alice", "team": "t1", "instance_type": "p5.48xlarge"}),
            &d,
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("allowed: t3.large, t3.xlarge"),
            "{err}"
        );
    }

    #[test]
    fn an_unknown_field_is_named_with_the_accepted_ones() {
        let err = parse_request(
            &json!({"owner": "alice", "team": "t1", "ttl": 3}),
            &defaults(),
        )
        .unwrap_err();
        assert_eq!(
            err,
            RequestError::UnknownField {
                field: "ttl".into()
            }
        );
        assert!(err
            .to_string()
            .contains("owner, team, hours, instance_type, request_id"));
    }

    #[test]
    fn standing_hosts_are_validated_and_point_at_the_bad_entry() {
        let ok = parse_standing_hosts(
            r#"[{"owner":"alice","team":"platform","instance_type":"t3.xlarge"}]"#,
            &defaults(),
        )
        .unwrap();
        assert_eq!(ok[0].instance_type, "t3.xlarge");
        assert_eq!(ok[0].hours, 8);

        let err = parse_standing_hosts(
            r#"[{"owner":"alice","team":"p1"},{"owner":"Bob","team":"p1"}]"#,
            &defaults(),
        )
        .unwrap_err();
        assert!(err.contains("#1") && err.contains("`Bob`"), "{err}");
        assert!(parse_standing_hosts("{}", &defaults())
            .unwrap_err()
            .contains("JSON array"));
        let twice = r#"[{"owner":"alice","team":"p1"},{"owner":"alice","team":"p1"}]"#;
        assert!(parse_standing_hosts(twice, &defaults())
            .unwrap_err()
            .contains("twice"));
    }

    #[test]
    fn the_guard_accepts_an_available_owned_unquarantined_ami() {
        assert_eq!(guard_now(&ami()).unwrap(), "ami-0123456789abcdef0");
    }

    #[test]
    fn the_guard_refuses_a_missing_pointer_or_ami() {
        let now = at("2026-12-04T12:00:00Z");
        assert_eq!(
            guard("/p", None, None, "1", now).unwrap_err().code(),
            "no-pointer"
        );
        assert_eq!(
            guard("/p", Some("ami-1"), None, "1", now)
                .unwrap_err()
                .code(),
            "ami-missing"
        );
    }

    #[test]
    fn the_guard_refuses_an_ami_deprecated_in_the_past_but_not_one_deprecated_later() {
        let mut a = ami();
        a.deprecation_time = Some("2026-12-01T00:00:00.000Z".into());
        let err = guard_now(&a).unwrap_err();
        assert_eq!(err.code(), "ami-deprecated");
        assert!(err.to_string().contains("2026-12-01"), "{err}");

        a.deprecation_time = Some("2027-01-01T00:00:00Z".into());
        assert!(guard_now(&a).is_ok());
    }

    #[test]
    fn the_guard_refuses_disabled_quarantined_and_foreign_amis_with_the_reason() {
        let mut disabled = ami();
        disabled.state = "disabled".into();
        assert_eq!(guard_now(&disabled).unwrap_err().code(), "ami-disabled");

        let mut quarantined = ami();
        quarantined.tags.push((
            ami_tags::QUARANTINE.into(),
            "CVE-2026-1234 in openssl".into(),
        ));
        let err = guard_now(&quarantined).unwrap_err();
        assert_eq!(err.code(), "ami-quarantined");
        assert!(err.to_string().contains("CVE-2026-1234"), "{err}");

        let mut foreign = ami();
        foreign.owner_id = Some("137112412989".into());
        assert!(guard_now(&foreign)
            .unwrap_err()
            .to_string()
            .contains("137112412989"));

        let mut pending = ami();
        pending.state = "pending".into();
        assert_eq!(guard_now(&pending).unwrap_err().code(), "ami-not-available");
    }

    #[test]
    fn an_instance_type_ec2_does_not_know_or_of_another_architecture_is_refused() {
        let a = ami();
        assert!(matches!(
            check_instance_type("t3.huge", None, &a),
            Err(RequestError::UnknownInstanceType { .. })
        ));
        let graviton = InstanceTypeFacts {
            name: "t4g.large".into(),
            architectures: vec!["arm64".into()],
        };
        let err = check_instance_type("t4g.large", Some(&graviton), &a).unwrap_err();
        assert!(
            err.to_string().contains("arm64") && err.to_string().contains("x86_64"),
            "{err}"
        );
        let intel = InstanceTypeFacts {
            name: "t3.large".into(),
            architectures: vec!["x86_64".into()],
        };
        assert!(check_instance_type("t3.large", Some(&intel), &a).is_ok());
    }

    #[test]
    fn the_same_trigger_and_host_give_the_same_short_ascii_token() {
        let a = client_token("req-1", &spec("alice", "platform"));
        assert_eq!(a, client_token("req-1", &spec("alice", "platform")));
        assert_ne!(a, client_token("req-2", &spec("alice", "platform")));
        assert_ne!(a, client_token("req-1", &spec("alice", "data")));
        assert!(a.len() <= 64 && a.is_ascii(), "{a}");
    }

    #[test]
    fn the_plan_tags_owner_team_expiry_and_sources() {
        let settings = LaunchSettings {
            subnet_id: "subnet-1".into(),
            security_group_id: "sg-1".into(),
            instance_profile: "host-profile".into(),
            root_volume_gib: 30,
        };
        let plan = plan_launch(
            &spec("alice", "platform"),
            &ami(),
            &settings,
            "req-1",
            vec![],
            at("2026-12-04T10:00:00Z"),
        );
        let tag = |k: &str| {
            plan.tags
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(tag(tags::OWNER), Some("alice"));
        assert_eq!(tag(tags::TEAM), Some("platform"));
        assert_eq!(tag(tags::EXPIRES_AT), Some("2026-12-04T18:00:00Z"));
        assert_eq!(tag(tags::SOURCE_AMI), Some("ami-0123456789abcdef0"));
        assert_eq!(
            tag(tags::SOURCE_IMAGE),
            Some("arn:aws:imagebuilder:image/x/1.0.0/1")
        );
        assert_eq!(tag(tags::MANAGED_BY), Some(tags::MANAGER));
        assert_eq!(tag(tags::LAUNCH_TOKEN), Some(plan.client_token.as_str()));
        assert_eq!(plan.metadata_hop_limit, 1);
        assert_eq!(plan.root_device_name, "/dev/xvda");
    }

    #[test]
    fn only_the_instance_profile_consistency_error_is_retried() {
        assert!(is_profile_not_yet_visible(
            Some("InvalidParameterValue"),
            "Value (host-profile) for parameter iamInstanceProfile.name is invalid. \
             Invalid IAM Instance Profile name"
        ));
        assert!(!is_profile_not_yet_visible(
            Some("InvalidParameterValue"),
            "Invalid value for portRange"
        ));
        assert!(!is_profile_not_yet_visible(
            Some("UnauthorizedOperation"),
            "Invalid IAM Instance Profile"
        ));
    }

    #[test]
    fn launch_retries_back_off_and_stop_at_the_budget() {
        let secs = std::time::Duration::from_secs;
        assert_eq!(launch_retry_delay(0, secs(0), secs(30)), Some(secs(1)));
        assert_eq!(launch_retry_delay(2, secs(3), secs(30)), Some(secs(4)));
        assert_eq!(launch_retry_delay(9, secs(10), secs(30)), Some(secs(8)));
        assert_eq!(launch_retry_delay(3, secs(25), secs(30)), None);
    }

    fn host(id: &str, owner: &str, team: &str, ami: &str) -> HostFacts {
        HostFacts {
            instance_id: id.into(),
            state: "running".into(),
            owner: Some(owner.into()),
            team: Some(team.into()),
            source_ami: Some(ami.into()),
            ..HostFacts::default()
        }
    }

    #[test]
    fn a_standing_host_on_an_older_ami_is_replaced_and_listed_as_superseded() {
        let hosts = vec![
            host("i-old", "alice", "platform", "ami-old"),
            host("i-bob", "bob", "platform", "ami-old"),
        ];
        let plan = plan_replacements(&[spec("alice", "platform")], &hosts, "ami-new");
        assert_eq!(
            plan,
            vec![Replacement::Launch {
                spec: spec("alice", "platform"),
                supersedes: vec!["i-old".into()]
            }]
        );
    }

    #[test]
    fn a_standing_host_already_on_the_new_ami_is_kept() {
        let hosts = vec![
            host("i-old", "alice", "platform", "ami-old"),
            host("i-new", "alice", "platform", "ami-new"),
        ];
        let plan = plan_replacements(&[spec("alice", "platform")], &hosts, "ami-new");
        assert_eq!(
            plan,
            vec![Replacement::Keep {
                spec: spec("alice", "platform"),
                instance_id: "i-new".into()
            }]
        );
    }

    #[test]
    fn superseded_and_terminated_hosts_are_not_replaced_again() {
        let mut superseded = host("i-1", "alice", "platform", "ami-old");
        superseded.superseded_by = Some("i-2".into());
        let mut terminated = host("i-3", "alice", "platform", "ami-old");
        terminated.state = "terminated".into();
        let plan = plan_replacements(
            &[spec("alice", "platform")],
            &[superseded, terminated],
            "ami-new",
        );
        assert_eq!(
            plan,
            vec![Replacement::Launch {
                spec: spec("alice", "platform"),
                supersedes: vec![]
            }]
        );
    }

    fn seen(state: Option<&str>, ping: Option<&str>, probe: ProbeResult) -> ReadinessObservation {
        ReadinessObservation {
            instance_state: state.map(Into::into),
            ping: ping.map(Into::into),
            probe,
        }
    }

    #[test]
    fn readiness_waits_for_ssm_then_probes_then_is_ready() {
        let (deadline, now) = (at("2026-12-04T12:15:00Z"), at("2026-12-04T12:01:00Z"));
        assert!(matches!(
            assess_readiness(
                &seen(Some("pending"), None, ProbeResult::NotSent),
                deadline,
                now
            ),
            Readiness::Wait { .. }
        ));
        assert!(matches!(
            assess_readiness(&seen(Some("running"), None, ProbeResult::NotSent), deadline, now),
            Readiness::Wait { reason } if reason.contains("not registered with SSM")
        ));
        assert_eq!(
            assess_readiness(
                &seen(Some("running"), Some("Online"), ProbeResult::NotSent),
                deadline,
                now
            ),
            Readiness::SendProbe
        );
        assert!(matches!(
            assess_readiness(
                &seen(Some("running"), Some("Online"), ProbeResult::Pending),
                deadline,
                now
            ),
            Readiness::Wait { .. }
        ));
        assert_eq!(
            assess_readiness(
                &seen(Some("running"), Some("Online"), ProbeResult::Passed),
                deadline,
                now
            ),
            Readiness::Ready
        );
    }

    #[test]
    fn a_failed_probe_is_sent_again_until_the_deadline_then_the_host_is_never_ready() {
        let failed = seen(
            Some("running"),
            Some("Online"),
            ProbeResult::Failed {
                detail: "exit 7".into(),
            },
        );
        assert_eq!(
            assess_readiness(
                &failed,
                at("2026-12-04T12:15:00Z"),
                at("2026-12-04T12:05:00Z")
            ),
            Readiness::SendProbe
        );
        match assess_readiness(
            &failed,
            at("2026-12-04T12:15:00Z"),
            at("2026-12-04T12:15:00Z"),
        ) {
            Readiness::NeverReady { reason } => assert!(reason.contains("exit 7"), "{reason}"),
            other => panic!("expected NeverReady, got {other:?}"),
        }
    }

    #[test]
    fn a_terminated_host_is_gone_not_waited_for() {
        let r = assess_readiness(
            &seen(Some("terminated"), None, ProbeResult::NotSent),
            at("2026-12-04T12:15:00Z"),
            at("2026-12-04T12:01:00Z"),
        );
        assert_eq!(
            r,
            Readiness::Gone {
                state: "terminated".into()
            }
        );
    }

    #[test]
    fn the_connection_kit_has_the_commands_and_an_ssh_block_without_an_open_port() {
        let kit = ConnectionKit {
            instance_id: "i-0abc".into(),
            region: "eu-west-1".into(),
            owner: "alice".into(),
            team: "platform".into(),
            ami_id: "ami-1".into(),
            expires_at: "2026-12-04T18:00:00Z".into(),
        };
        let text = kit.render();
        assert!(
            text.contains("Instance: i-0abc") && text.contains("Region: eu-west-1"),
            "{text}"
        );
        assert!(text.contains("Expires at: 2026-12-04T18:00:00Z"), "{text}");
        assert!(text.contains(
            "aws ssm start-session --region eu-west-1 --target i-0abc --document-name \
             AWS-StartPortForwardingSession --parameters '{\"portNumber\":[\"8080\"],\"localPortNumber\":[\"8080\"]}'"
        ), "{text}");
        assert!(text.contains("Key=expires-at"), "{text}");
        assert!(
            text.contains(
                "    Host vscode-alice-platform\n      HostName i-0abc\n      User vscode"
            ),
            "{text}"
        );
        assert!(
            text.contains("--document-name AWS-StartSSHSession --parameters portNumber=%p"),
            "{text}"
        );
        assert!(
            text.contains("ec2-instance-connect send-ssh-public-key"),
            "{text}"
        );
    }
}
