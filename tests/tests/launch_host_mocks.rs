//! launch-host against SDK mocks, for what moto cannot show: IAM's eventual consistency on a
//! new instance profile, SSM managed-instance state, probe results, throttling, and readiness
//! concluded in one invocation or in a handed-off check.

use integration_tests::read_event;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_ec2::error::ErrorMetadata;
use aws_sdk_ec2::operation::run_instances::RunInstancesError;
use aws_sdk_ec2::types as ec2t;
use aws_sdk_ssm::operation::describe_instance_information::DescribeInstanceInformationOutput as InstanceInformationOutput;
use aws_sdk_ssm::operation::get_command_invocation::GetCommandInvocationError;
use aws_sdk_ssm::types as ssmt;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use chrono::{DateTime, Utc};
use serde_json::Value;
use shared::aws::Clients;
use shared::config::Env;
use shared::launch::{LaunchConfig, Launcher};

const AMI: &str = "ami-0123456789abcdef0";
const HOST: &str = "i-0123456789abcdef0";

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn config(extra: &[(&'static str, &'static str)]) -> LaunchConfig {
    let mut vars = vec![
        ("POINTER_PARAMETER", "/vscode-host/ami/current"),
        (
            "TOPIC_ARN",
            "arn:aws:sns:us-east-1:123456789012:vscode-host",
        ),
        ("ACCOUNT_ID", "123456789012"),
        ("AWS_REGION", "us-east-1"),
        ("HOST_SUBNET_ID", "subnet-0abc"),
        ("HOST_SECURITY_GROUP_ID", "sg-0abc"),
        ("HOST_INSTANCE_PROFILE", "vscode-host-profile"),
        (
            "READINESS_QUEUE_URL",
            "https://sqs.us-east-1.amazonaws.com/123456789012/readiness",
        ),
        ("READINESS_POLL_SECONDS", "0"),
    ];
    vars.extend_from_slice(extra);
    LaunchConfig::from_env(&Env::from_pairs(vars)).unwrap()
}

/// A host in EC2's answer, with the given readiness tag.
fn host(readiness: &str) -> aws_sdk_ec2::operation::describe_instances::DescribeInstancesOutput {
    let instance = ec2t::Instance::builder()
        .instance_id(HOST)
        .state(
            ec2t::InstanceState::builder()
                .name(ec2t::InstanceStateName::Running)
                .build(),
        )
        .tags(
            ec2t::Tag::builder()
                .key("readiness")
                .value(readiness)
                .build(),
        )
        .build();
    aws_sdk_ec2::operation::describe_instances::DescribeInstancesOutput::builder()
        .reservations(ec2t::Reservation::builder().instances(instance).build())
        .build()
}

/// EC2 as it answers a launch: the AMI, the instance type, no earlier host with the token, the
/// running host by id, and `run` for RunInstances.
fn ec2_rules(run: &Rule, readiness: &'static str) -> Vec<Rule> {
    vec![
        mock!(aws_sdk_ec2::Client::describe_images).then_output(|| {
            aws_sdk_ec2::operation::describe_images::DescribeImagesOutput::builder()
                .images(
                    ec2t::Image::builder()
                        .image_id(AMI)
                        .state(ec2t::ImageState::Available)
                        .owner_id("123456789012")
                        .architecture(ec2t::ArchitectureValues::X8664)
                        .root_device_name("/dev/xvda")
                        .build(),
                )
                .build()
        }),
        mock!(aws_sdk_ec2::Client::describe_instance_types).then_output(|| {
            aws_sdk_ec2::operation::describe_instance_types::DescribeInstanceTypesOutput::builder()
                .instance_types(
                    ec2t::InstanceTypeInfo::builder()
                        .instance_type(ec2t::InstanceType::T3Large)
                        .processor_info(
                            ec2t::ProcessorInfo::builder()
                                .supported_architectures(ec2t::ArchitectureType::X8664)
                                .build(),
                        )
                        .build(),
                )
                .build()
        }),
        mock!(aws_sdk_ec2::Client::describe_instances)
            .match_requests(|r| r.instance_ids().is_empty())
            .then_output(|| {
                aws_sdk_ec2::operation::describe_instances::DescribeInstancesOutput::builder()
                    .build()
            }),
        mock!(aws_sdk_ec2::Client::describe_instances)
            .match_requests(|r| !r.instance_ids().is_empty())
            .then_output(move || host(readiness)),
        run.clone(),
        mock!(aws_sdk_ec2::Client::create_tags).then_output(|| {
            aws_sdk_ec2::operation::create_tags::CreateTagsOutput::builder().build()
        }),
    ]
}

fn launched() -> Rule {
    mock!(aws_sdk_ec2::Client::run_instances).then_output(|| {
        aws_sdk_ec2::operation::run_instances::RunInstancesOutput::builder()
            .instances(ec2t::Instance::builder().instance_id(HOST).build())
            .build()
    })
}

fn pointer() -> Rule {
    mock!(aws_sdk_ssm::Client::get_parameter).then_output(|| {
        aws_sdk_ssm::operation::get_parameter::GetParameterOutput::builder()
            .parameter(
                ssmt::Parameter::builder()
                    .name("/vscode-host/ami/current")
                    .value(AMI)
                    .build(),
            )
            .build()
    })
}

fn online() -> InstanceInformationOutput {
    InstanceInformationOutput::builder()
        .instance_information_list(
            ssmt::InstanceInformation::builder()
                .instance_id(HOST)
                .ping_status(ssmt::PingStatus::Online)
                .build(),
        )
        .build()
}

fn probe_sent() -> Rule {
    mock!(aws_sdk_ssm::Client::send_command).then_output(|| {
        aws_sdk_ssm::operation::send_command::SendCommandOutput::builder()
            .command(ssmt::Command::builder().command_id("cmd-1").build())
            .build()
    })
}

fn invocation(
    status: ssmt::CommandInvocationStatus,
) -> aws_sdk_ssm::operation::get_command_invocation::GetCommandInvocationOutput {
    aws_sdk_ssm::operation::get_command_invocation::GetCommandInvocationOutput::builder()
        .status(status)
        .build()
}

/// A published notification: its body and its string attributes.
type Published = (String, Vec<(String, String)>);

/// What was published, and the queue hand-offs sent.
#[derive(Clone, Default)]
struct Sent {
    notifications: Arc<Mutex<Vec<Published>>>,
    hand_offs: Arc<Mutex<Vec<(String, i32)>>>,
}

fn launcher(cfg: LaunchConfig, ec2: &[Rule], ssm: &[Rule], sent: &Sent) -> Launcher {
    let published = sent.notifications.clone();
    let publish = mock!(aws_sdk_sns::Client::publish).then_compute_output(move |req| {
        let attributes = req
            .message_attributes()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.string_value().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        published
            .lock()
            .unwrap()
            .push((req.message().unwrap_or_default().to_string(), attributes));
        aws_sdk_sns::operation::publish::PublishOutput::builder()
            .message_id("sns-1")
            .build()
    });
    let queued = sent.hand_offs.clone();
    let send = mock!(aws_sdk_sqs::Client::send_message).then_compute_output(move |req| {
        queued.lock().unwrap().push((
            req.message_body().unwrap_or_default().to_string(),
            req.delay_seconds().unwrap_or(0),
        ));
        aws_sdk_sqs::operation::send_message::SendMessageOutput::builder()
            .message_id("sqs-1")
            .build()
    });
    let fast_retries = |c: aws_sdk_ssm::config::Builder| {
        c.retry_config(
            aws_sdk_ssm::config::retry::RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(Duration::from_millis(1))
                .with_max_backoff(Duration::from_millis(5)),
        )
    };
    let no_rules: [&Rule; 0] = [];
    let clients = Clients {
        imagebuilder: mock_client!(aws_sdk_imagebuilder, no_rules),
        ec2: mock_client!(aws_sdk_ec2, RuleMode::MatchAny, ec2.iter()),
        ssm: mock_client!(aws_sdk_ssm, RuleMode::MatchAny, ssm.iter(), fast_retries),
        sns: mock_client!(aws_sdk_sns, [&publish]),
        dynamodb: mock_client!(aws_sdk_dynamodb, no_rules),
    };
    Launcher::new(cfg, clients, mock_client!(aws_sdk_sqs, [&send]))
}

#[tokio::test]
async fn the_instance_profile_consistency_error_is_retried_then_one_host_launches() {
    let run = mock!(aws_sdk_ec2::Client::run_instances)
        .sequence()
        .error(|| {
            RunInstancesError::generic(
                ErrorMetadata::builder()
                    .code("InvalidParameterValue")
                    .message(
                        "Value (vscode-host-profile) for parameter iamInstanceProfile.name is \
                         invalid. Invalid IAM Instance Profile name",
                    )
                    .build(),
            )
        })
        .output(|| {
            aws_sdk_ec2::operation::run_instances::RunInstancesOutput::builder()
                .instances(ec2t::Instance::builder().instance_id(HOST).build())
                .build()
        })
        .build();
    let sent = Sent::default();
    let l = launcher(
        config(&[]),
        &ec2_rules(&run, "pending"),
        &[pointer()],
        &sent,
    );

    let outcome = l
        .handle(
            &read_event("launch-request.json"),
            "req-1",
            None,
            Utc::now(),
        )
        .await
        .unwrap();

    assert_eq!(run.num_calls(), 2, "one refusal, one launch");
    assert_eq!(outcome.hosts[0].instance_id.as_deref(), Some(HOST));
    assert_eq!(outcome.hosts[0].action, "launched");
}

#[tokio::test]
async fn any_other_launch_error_is_not_retried() {
    let run = mock!(aws_sdk_ec2::Client::run_instances).then_error(|| {
        RunInstancesError::generic(
            ErrorMetadata::builder()
                .code("UnauthorizedOperation")
                .message("You are not authorized")
                .build(),
        )
    });
    let sent = Sent::default();
    let l = launcher(
        config(&[]),
        &ec2_rules(&run, "pending"),
        &[pointer()],
        &sent,
    );

    let err = l
        .handle(
            &read_event("launch-request.json"),
            "req-1",
            None,
            Utc::now(),
        )
        .await
        .unwrap_err();

    assert_eq!(run.num_calls(), 1);
    let diagnostic: lambda_runtime::Diagnostic = err.into();
    assert_eq!(diagnostic.error_type, "AwsCallFailed");
    assert!(
        diagnostic.error_message.contains("RunInstances"),
        "{}",
        diagnostic.error_message
    );
    assert!(
        sent.notifications.lock().unwrap().is_empty(),
        "nothing is announced"
    );
}

#[tokio::test]
async fn readiness_is_followed_through_ssm_until_code_server_answers() {
    let managed = mock!(aws_sdk_ssm::Client::describe_instance_information)
        .sequence()
        .output(|| InstanceInformationOutput::builder().build())
        .output(online)
        .repeatedly()
        .build();
    let probe = mock!(aws_sdk_ssm::Client::get_command_invocation)
        .sequence()
        .error(|| {
            GetCommandInvocationError::InvocationDoesNotExist(
                aws_sdk_ssm::types::error::InvocationDoesNotExist::builder().build(),
            )
        })
        .output(|| invocation(ssmt::CommandInvocationStatus::InProgress))
        .output(|| invocation(ssmt::CommandInvocationStatus::Success))
        .build();
    let sent = Sent::default();
    let ssm = [pointer(), managed.clone(), probe_sent(), probe.clone()];
    let l = launcher(
        config(&[("READINESS_WAIT_SECONDS", "60")]),
        &ec2_rules(&launched(), "pending"),
        &ssm,
        &sent,
    );

    let outcome = l
        .handle(
            &read_event("launch-request.json"),
            "req-1",
            None,
            Utc::now(),
        )
        .await
        .unwrap();

    assert_eq!(outcome.hosts[0].readiness.as_deref(), Some("ready"));
    assert_eq!(probe.num_calls(), 3);
    assert!(
        sent.hand_offs.lock().unwrap().is_empty(),
        "ready within the invocation: no hand-off"
    );
    let notifications = sent.notifications.lock().unwrap();
    assert!(
        notifications[0]
            .0
            .contains("Readiness: ready: VS Code answers"),
        "{}",
        notifications[0].0
    );
}

#[tokio::test]
async fn a_host_that_never_answers_is_reported_and_terminated() {
    let terminate = mock!(aws_sdk_ec2::Client::terminate_instances).then_output(|| {
        aws_sdk_ec2::operation::terminate_instances::TerminateInstancesOutput::builder().build()
    });
    let mut ec2 = ec2_rules(&launched(), "pending");
    ec2.push(terminate.clone());
    let never = mock!(aws_sdk_ssm::Client::describe_instance_information)
        .then_output(|| InstanceInformationOutput::builder().build());
    let sent = Sent::default();
    let cfg = config(&[
        ("READINESS_WAIT_SECONDS", "60"),
        ("READINESS_TIMEOUT_SECONDS", "0"),
    ]);
    let l = launcher(cfg, &ec2, &[pointer(), never], &sent);

    let outcome = l
        .handle(
            &read_event("launch-request.json"),
            "req-1",
            None,
            Utc::now(),
        )
        .await
        .unwrap();

    assert_eq!(outcome.hosts[0].readiness.as_deref(), Some("not-ready"));
    assert_eq!(terminate.num_calls(), 1);
    let notifications = sent.notifications.lock().unwrap();
    let body = &notifications[0].0;
    assert!(
        body.contains("never became ready") && body.contains("not registered with SSM"),
        "{body}"
    );
    assert!(body.contains("the host was terminated"), "{body}");
}

#[tokio::test]
async fn an_unready_host_is_kept_when_configuration_says_so() {
    let terminate = mock!(aws_sdk_ec2::Client::terminate_instances).then_output(|| {
        aws_sdk_ec2::operation::terminate_instances::TerminateInstancesOutput::builder().build()
    });
    let mut ec2 = ec2_rules(&launched(), "pending");
    ec2.push(terminate.clone());
    let never = mock!(aws_sdk_ssm::Client::describe_instance_information)
        .then_output(|| InstanceInformationOutput::builder().build());
    let cfg = config(&[
        ("READINESS_WAIT_SECONDS", "60"),
        ("READINESS_TIMEOUT_SECONDS", "0"),
        ("TERMINATE_UNREADY", "false"),
    ]);
    let l = launcher(cfg, &ec2, &[pointer(), never], &Sent::default());

    let outcome = l
        .handle(
            &read_event("launch-request.json"),
            "req-1",
            None,
            Utc::now(),
        )
        .await
        .unwrap();

    assert_eq!(outcome.hosts[0].readiness.as_deref(), Some("not-ready"));
    assert_eq!(terminate.num_calls(), 0);
}

#[tokio::test]
async fn throttled_ssm_calls_are_retried_and_readiness_carries_on() {
    let managed = mock!(aws_sdk_ssm::Client::describe_instance_information)
        .sequence()
        .http_status(
            400,
            Some(r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#.into()),
        )
        .output(online)
        .repeatedly()
        .build();
    let probe = mock!(aws_sdk_ssm::Client::get_command_invocation)
        .then_output(|| invocation(ssmt::CommandInvocationStatus::Success));
    let sent = Sent::default();
    let ssm = [pointer(), managed.clone(), probe_sent(), probe];
    let l = launcher(
        config(&[("READINESS_WAIT_SECONDS", "60")]),
        &ec2_rules(&launched(), "pending"),
        &ssm,
        &sent,
    );

    let outcome = l
        .handle(
            &read_event("launch-request.json"),
            "req-1",
            None,
            Utc::now(),
        )
        .await
        .unwrap();

    assert_eq!(outcome.hosts[0].readiness.as_deref(), Some("ready"));
    assert_eq!(managed.num_calls(), 3, "throttled once, then online twice");
}

#[tokio::test]
async fn a_wait_that_does_not_fit_the_invocation_is_handed_off_to_the_queue() {
    let sent = Sent::default();
    let cfg = config(&[
        ("READINESS_WAIT_SECONDS", "600"),
        ("READINESS_RECHECK_SECONDS", "120"),
    ]);
    let l = launcher(cfg, &ec2_rules(&launched(), "pending"), &[pointer()], &sent);
    let now = Utc::now();
    // Ten seconds left: less than the margin kept for the hand-off itself.
    let deadline = now + chrono::Duration::seconds(10);

    let outcome = l
        .handle(
            &read_event("launch-request.json"),
            "req-1",
            Some(deadline),
            now,
        )
        .await
        .unwrap();

    assert_eq!(outcome.hosts[0].readiness.as_deref(), Some("pending"));
    let hand_offs = sent.hand_offs.lock().unwrap();
    assert_eq!(hand_offs.len(), 1);
    let (body, delay) = &hand_offs[0];
    assert_eq!(*delay, 120);
    let check: Value = serde_json::from_str(body).unwrap();
    assert_eq!(check["kind"], "host.readiness-check");
    assert_eq!(check["instance_id"], HOST);
    assert_eq!(check["owner"], "alice");
}

#[tokio::test]
async fn a_handed_off_check_reports_ready_and_sends_the_kit_to_the_owner() {
    let sent = Sent::default();
    let ssm = [
        mock!(aws_sdk_ssm::Client::describe_instance_information).then_output(online),
        probe_sent(),
        mock!(aws_sdk_ssm::Client::get_command_invocation)
            .then_output(|| invocation(ssmt::CommandInvocationStatus::Success)),
    ];
    let l = launcher(
        config(&[("READINESS_WAIT_SECONDS", "60")]),
        &ec2_rules(&launched(), "pending"),
        &ssm,
        &sent,
    );

    let outcome = l
        .handle(
            &read_event("launch-readiness-check.json"),
            "req-9",
            None,
            at("2026-12-04T04:05:00Z"),
        )
        .await
        .unwrap();

    assert_eq!(outcome.trigger, "readiness-check");
    assert_eq!(outcome.hosts[0].readiness.as_deref(), Some("ready"));
    assert!(outcome.hosts[0]
        .connection_kit
        .as_deref()
        .unwrap()
        .contains("AWS-StartSSHSession"));
    let notifications = sent.notifications.lock().unwrap();
    let (body, attributes) = &notifications[0];
    assert!(body.starts_with("Your VS Code host is ready."), "{body}");
    assert!(
        attributes.contains(&("owner".into(), "alice".into())),
        "{attributes:?}"
    );
    assert!(
        attributes.contains(&("event_type".into(), "host.ready".into())),
        "{attributes:?}"
    );
}

#[tokio::test]
async fn a_repeated_check_of_a_host_already_ready_changes_nothing() {
    let sent = Sent::default();
    let managed = mock!(aws_sdk_ssm::Client::describe_instance_information).then_output(online);
    let l = launcher(
        config(&[("READINESS_WAIT_SECONDS", "60")]),
        &ec2_rules(&launched(), "ready"),
        std::slice::from_ref(&managed),
        &sent,
    );

    let outcome = l
        .handle(
            &read_event("launch-readiness-check.json"),
            "req-9",
            None,
            at("2026-12-04T04:05:00Z"),
        )
        .await
        .unwrap();

    assert_eq!(outcome.hosts[0].action, "ready");
    assert_eq!(managed.num_calls(), 0);
    assert!(sent.notifications.lock().unwrap().is_empty());
}
