//! launch-host against moto: what EC2 reports back about a launched host, idempotency, bad
//! requests, the launch guard and the replacement of standing hosts after a promotion.
//!
//! moto has no SSM managed-instance state, so readiness is handed off at once here
//! (`READINESS_WAIT_SECONDS=0`) and the hand-off message is read from the queue; readiness
//! itself is tested with SDK mocks in `launch_host_mocks.rs`.

use aws_config::SdkConfig;
use aws_sdk_ec2::types::{Filter, InstanceAttributeName};
use chrono::{DateTime, Utc};
use integration_tests::launch_support::*;
use integration_tests::read_event;
use serde_json::{json, Value};
use shared::aws::Clients;
use shared::config::Env;
use shared::launch::{LaunchConfig, LaunchError, Launcher, Outcome};

struct Bed {
    _moto: Moto,
    config: SdkConfig,
    seeded: Seeded,
    ec2: aws_sdk_ec2::Client,
    sqs: aws_sdk_sqs::Client,
}

impl Bed {
    async fn new() -> Bed {
        let moto = Moto::start();
        let config = moto.sdk_config().await;
        let seeded = seed(&moto, &config).await;
        let ec2 = aws_sdk_ec2::Client::new(&config);
        let sqs = aws_sdk_sqs::Client::new(&config);
        Bed {
            _moto: moto,
            config,
            seeded,
            ec2,
            sqs,
        }
    }

    fn launcher(&self, extra: &[(&str, &str)]) -> Launcher {
        let vars = launch_env(&self.seeded, extra);
        let env = Env::from_pairs(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let config = LaunchConfig::from_env(&env).expect("test configuration is valid");
        Launcher::new(
            config,
            Clients::from_config(&self.config),
            aws_sdk_sqs::Client::new(&self.config),
        )
    }

    async fn handle(
        &self,
        launcher: &Launcher,
        payload: &Value,
        request_id: &str,
    ) -> Result<Outcome, LaunchError> {
        launcher.handle(payload, request_id, None, now()).await
    }

    /// Every instance managed by this project, in any state but terminated.
    async fn hosts(&self) -> Vec<aws_sdk_ec2::types::Instance> {
        let out = self
            .ec2
            .describe_instances()
            .filters(
                Filter::builder()
                    .name("tag:managed-by")
                    .values("vscode-host-images")
                    .build(),
            )
            .filters(
                Filter::builder()
                    .name("instance-state-name")
                    .values("pending")
                    .values("running")
                    .build(),
            )
            .send()
            .await
            .unwrap();
        out.reservations()
            .iter()
            .flat_map(|r| r.instances().to_vec())
            .collect()
    }

    async fn instance(&self, id: &str) -> aws_sdk_ec2::types::Instance {
        let out = self
            .ec2
            .describe_instances()
            .instance_ids(id)
            .send()
            .await
            .unwrap();
        out.reservations()[0].instances()[0].clone()
    }
}

fn now() -> DateTime<Utc> {
    Utc::now()
}

fn tag(instance: &aws_sdk_ec2::types::Instance, key: &str) -> Option<String> {
    instance
        .tags()
        .iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
        .map(str::to_string)
}

#[tokio::test]
async fn a_requested_host_is_launched_with_every_setting_ec2_reports_back() {
    let bed = Bed::new().await;
    let launcher = bed.launcher(&[]);

    let outcome = bed
        .handle(&launcher, &read_event("launch-request.json"), "req-1")
        .await
        .unwrap();

    let host = &outcome.hosts[0];
    assert_eq!(host.action, "launched");
    assert_eq!(host.readiness.as_deref(), Some("pending"));
    let id = host.instance_id.clone().unwrap();
    let instance = bed.instance(&id).await;

    assert_eq!(instance.public_ip_address(), None, "no public address");
    assert_eq!(instance.key_name(), None, "no key pair");
    let nic = &instance.network_interfaces()[0];
    assert!(nic.association().and_then(|a| a.public_ip()).is_none());
    assert_eq!(nic.subnet_id(), Some(bed.seeded.subnet_id.as_str()));
    let groups: Vec<&str> = nic.groups().iter().filter_map(|g| g.group_id()).collect();
    assert_eq!(groups, vec![bed.seeded.security_group_id.as_str()]);
    let sg = bed
        .ec2
        .describe_security_groups()
        .group_ids(&bed.seeded.security_group_id)
        .send()
        .await
        .unwrap();
    assert!(
        sg.security_groups()[0].ip_permissions().is_empty(),
        "the host security group has no ingress"
    );

    let metadata = instance.metadata_options().unwrap();
    assert_eq!(metadata.http_tokens().map(|t| t.as_str()), Some("required"));
    assert_eq!(metadata.http_put_response_hop_limit(), Some(1));

    let profile = instance
        .iam_instance_profile()
        .and_then(|p| p.arn())
        .unwrap();
    assert!(
        profile.ends_with(&format!("instance-profile/{PROFILE}")),
        "{profile}"
    );

    let shutdown = bed
        .ec2
        .describe_instance_attribute()
        .instance_id(&id)
        .attribute(InstanceAttributeName::InstanceInitiatedShutdownBehavior)
        .send()
        .await
        .unwrap();
    assert_eq!(
        shutdown
            .instance_initiated_shutdown_behavior()
            .and_then(|v| v.value()),
        Some("terminate")
    );

    let volumes = bed
        .ec2
        .describe_volumes()
        .filters(
            Filter::builder()
                .name("attachment.instance-id")
                .values(&id)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let root = &volumes.volumes()[0];
    assert_eq!(root.volume_type().map(|v| v.as_str()), Some("gp3"));
    assert_eq!(root.encrypted(), Some(true));
    let volume_tag = |k: &str| {
        root.tags()
            .iter()
            .find(|t| t.key() == Some(k))
            .and_then(|t| t.value())
            .map(str::to_string)
    };
    assert_eq!(volume_tag("owner").as_deref(), Some("alice"));
    assert_eq!(volume_tag("source-ami"), Some(bed.seeded.ami_id.clone()));

    assert_eq!(tag(&instance, "owner").as_deref(), Some("alice"));
    assert_eq!(tag(&instance, "team").as_deref(), Some("platform"));
    assert_eq!(
        tag(&instance, "managed-by").as_deref(),
        Some("vscode-host-images")
    );
    assert_eq!(
        tag(&instance, "source-ami"),
        Some(bed.seeded.ami_id.clone())
    );
    assert_eq!(
        tag(&instance, "source-image-arn").as_deref(),
        Some("arn:aws:imagebuilder:us-east-1:123456789012:image/vscode-host/1.0.0/7")
    );
    let expires: DateTime<Utc> = tag(&instance, "expires-at").unwrap().parse().unwrap();
    let hours = (expires - Utc::now()).num_minutes() as f64 / 60.0;
    assert!((7.9..=8.0).contains(&hours), "expires in {hours} h");
    assert_eq!(
        instance.instance_type().map(|t| t.as_str()),
        Some("t3.large")
    );
    assert_eq!(instance.image_id(), Some(bed.seeded.ami_id.as_str()));
}

#[tokio::test]
async fn the_owner_gets_the_connection_kit_and_readiness_is_handed_to_the_queue() {
    let bed = Bed::new().await;
    let launcher = bed.launcher(&[]);

    let outcome = bed
        .handle(&launcher, &read_event("launch-request.json"), "req-1")
        .await
        .unwrap();
    let id = outcome.hosts[0].instance_id.clone().unwrap();

    let inbox = drain(&bed.sqs, &bed.seeded.inbox_url).await;
    assert_eq!(inbox.len(), 1, "{inbox:#?}");
    let attributes = &inbox[0]["MessageAttributes"];
    assert_eq!(attributes["owner"]["Value"], "alice");
    assert_eq!(attributes["team"]["Value"], "platform");
    assert_eq!(attributes["event_type"]["Value"], "host.launched");
    let body = inbox[0]["Message"].as_str().unwrap();
    assert!(body.contains(&format!("Instance: {id}")), "{body}");
    assert!(body.contains("Region: us-east-1"), "{body}");
    assert!(body.contains("Expires at: "), "{body}");
    assert!(body.contains("AWS-StartPortForwardingSession"), "{body}");
    assert!(
        body.contains("ProxyCommand") && body.contains("AWS-StartSSHSession"),
        "{body}"
    );
    assert!(
        body.contains("create-tags") && body.contains("Key=expires-at"),
        "{body}"
    );

    let checks = drain(&bed.sqs, &bed.seeded.readiness_queue_url).await;
    assert_eq!(checks.len(), 1, "{checks:#?}");
    assert_eq!(checks[0]["kind"], "host.readiness-check");
    assert_eq!(checks[0]["instance_id"], json!(id));
    assert_eq!(checks[0]["attempt"], 1);
}

#[tokio::test]
async fn a_retried_request_launches_one_instance_not_two() {
    let bed = Bed::new().await;
    let launcher = bed.launcher(&[]);

    let first = bed
        .handle(&launcher, &read_event("launch-request.json"), "req-1")
        .await
        .unwrap();
    // Lambda retries the same request ten minutes later.
    let later = now() + chrono::Duration::minutes(10);
    let again = launcher
        .handle(&read_event("launch-request.json"), "req-1", None, later)
        .await
        .unwrap();

    assert_eq!(first.hosts[0].instance_id, again.hosts[0].instance_id);
    assert_eq!(again.hosts[0].action, "already-launched");
    assert_eq!(
        again.hosts[0].expires_at, first.hosts[0].expires_at,
        "the retry reports the expiry the host was launched with"
    );
    assert_eq!(bed.hosts().await.len(), 1);

    let other = bed
        .handle(&launcher, &read_event("launch-request.json"), "req-2")
        .await
        .unwrap();
    assert_ne!(
        other.hosts[0].instance_id, first.hosts[0].instance_id,
        "a new request is a new host"
    );
}

#[tokio::test]
async fn bad_requests_get_a_clear_error_and_launch_nothing() {
    let bed = Bed::new().await;
    let launcher = bed.launcher(&[]);
    let cases = [
        (
            read_event("launch-request-bad-hours.json"),
            "`hours` must be a whole number from 1 to 72",
        ),
        (
            json!({"owner": "alice", "team": "platform", "hours": -4}),
            "from 1 to 72",
        ),
        (
            json!({"owner": "Alice Smith", "team": "platform"}),
            "`owner` must be a name",
        ),
        (
            json!({"owner": "alice", "team": "platform", "instance_type": "t3.huge"}),
            "t3.huge is not offered by EC2",
        ),
        (
            json!({"owner": "alice", "team": "platform", "instance_type": "large"}),
            "look like an EC2 instance type",
        ),
        (
            json!({"owner": "alice", "team": "platform", "lifetime": 3}),
            "unknown field `lifetime`",
        ),
    ];

    for (payload, expected) in cases {
        let err = bed
            .handle(&launcher, &payload, "req-bad")
            .await
            .unwrap_err();
        let diagnostic: lambda_runtime::Diagnostic = err.into();
        assert_eq!(diagnostic.error_type, "InvalidRequest", "{payload}");
        assert!(
            diagnostic.error_message.contains(expected),
            "{payload}: {}",
            diagnostic.error_message
        );
    }
    assert!(
        bed.hosts().await.is_empty(),
        "a bad request launches nothing"
    );
}

#[tokio::test]
async fn the_guard_refuses_a_quarantined_or_foreign_ami_and_launches_nothing() {
    let bed = Bed::new().await;
    let launcher = bed.launcher(&[]);
    let ssm = aws_sdk_ssm::Client::new(&bed.config);

    bed.ec2
        .create_tags()
        .resources(&bed.seeded.ami_id)
        .tags(
            aws_sdk_ec2::types::Tag::builder()
                .key("quarantine")
                .value("CVE-2026-0001")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let err = bed
        .handle(&launcher, &read_event("launch-request.json"), "req-1")
        .await
        .unwrap_err();
    let diagnostic: lambda_runtime::Diagnostic = err.into();
    assert_eq!(diagnostic.error_type, "LaunchRefused");
    assert!(
        diagnostic
            .error_message
            .contains("quarantined (CVE-2026-0001)"),
        "{}",
        diagnostic.error_message
    );

    point_at(&ssm, AMAZON_AMI).await;
    let err = bed
        .handle(&launcher, &read_event("launch-request.json"), "req-2")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("owned by account 137112412989, not this account 123456789012"),
        "{err}"
    );

    point_at(&ssm, "ami-0000000000000dead").await;
    let err = bed
        .handle(&launcher, &read_event("launch-request.json"), "req-3")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown to EC2"), "{err}");

    assert!(bed.hosts().await.is_empty());
}

#[tokio::test]
async fn a_promotion_replaces_each_standing_host_and_marks_the_old_one_superseded() {
    let bed = Bed::new().await;
    let standing = r#"[{"owner":"alice","team":"platform","instance_type":"t3.large"}]"#;
    let launcher = bed.launcher(&[("STANDING_HOSTS", standing)]);
    let old = bed
        .handle(&launcher, &read_event("launch-request.json"), "req-1")
        .await
        .unwrap();
    let old_id = old.hosts[0].instance_id.clone().unwrap();

    let new_ami = register_ami(
        &bed.ec2,
        "vscode-host-2026-12-05",
        "arn:aws:imagebuilder:us-east-1:123456789012:image/vscode-host/1.0.0/8",
    )
    .await;
    point_at(&aws_sdk_ssm::Client::new(&bed.config), &new_ami).await;
    let outcome = bed
        .handle(
            &launcher,
            &read_event("launch-after-promotion.json"),
            "req-2",
        )
        .await
        .unwrap();

    assert_eq!(outcome.decision, "replace");
    let host = &outcome.hosts[0];
    assert_eq!(host.action, "launched");
    assert_eq!(host.supersedes, vec![old_id.clone()]);
    let new_id = host.instance_id.clone().unwrap();
    let new = bed.instance(&new_id).await;
    assert_eq!(new.image_id(), Some(new_ami.as_str()));
    assert_eq!(
        tag(&bed.instance(&old_id).await, "superseded-by"),
        Some(new_id.clone())
    );

    // The same promotion delivered again changes nothing.
    let again = bed
        .handle(
            &launcher,
            &read_event("launch-after-promotion.json"),
            "req-3",
        )
        .await
        .unwrap();
    assert_eq!(again.hosts[0].action, "kept");
    assert_eq!(again.hosts[0].instance_id, Some(new_id));
    assert_eq!(
        bed.hosts().await.len(),
        2,
        "the old host stays until it is retired"
    );
}

#[tokio::test]
async fn a_promotion_of_a_quarantined_ami_is_reported_and_launches_nothing() {
    let bed = Bed::new().await;
    let launcher = bed.launcher(&[("STANDING_HOSTS", r#"[{"owner":"alice","team":"platform"}]"#)]);
    bed.ec2
        .create_tags()
        .resources(&bed.seeded.ami_id)
        .tags(
            aws_sdk_ec2::types::Tag::builder()
                .key("quarantine")
                .value("manual hold")
                .build(),
        )
        .send()
        .await
        .unwrap();

    let outcome = bed
        .handle(
            &launcher,
            &read_event("launch-after-promotion.json"),
            "req-1",
        )
        .await
        .unwrap();

    assert_eq!(outcome.decision, "refused");
    assert!(outcome.reason.contains("manual hold"), "{}", outcome.reason);
    let inbox = drain(&bed.sqs, &bed.seeded.inbox_url).await;
    assert_eq!(
        inbox[0]["MessageAttributes"]["event_type"]["Value"],
        "host.launch-refused"
    );
    assert!(bed.hosts().await.is_empty());
}
