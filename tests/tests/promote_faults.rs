//! What the emulator cannot do, injected with aws-smithy-mocks: throttling, 5xx, a missing
//! image, an `aws:ec2:image` value AWS silently drops, and the deprecation call moto lacks.

use std::time::Duration;

use aws_sdk_ec2::operation::enable_image_deprecation::EnableImageDeprecationOutput;
use aws_sdk_imagebuilder::operation::get_image::{GetImageError, GetImageOutput};
use aws_sdk_ssm::operation::get_parameter::GetParameterOutput;
use aws_sdk_ssm::operation::put_parameter::PutParameterOutput;
use aws_sdk_ssm::types::Parameter;
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use aws_smithy_types::error::ErrorMetadata;
use aws_smithy_types::retry::RetryConfig;
use chrono::{DateTime, Utc};
use integration_tests::testbed::TestBed;
use integration_tests::{read_event, sample_ami, sample_image_arn, SEEDED_AMI};
use shared::aws::{ec2, imagebuilder};

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-12-04T04:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn fast_retries() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(3)
        .with_initial_backoff(Duration::from_millis(1))
        .with_max_backoff(Duration::from_millis(5))
}

fn sample_image_output(build: u32) -> GetImageOutput {
    // The loopback fixtures are real wire responses; reuse one by round-tripping it through
    // the SDK's own deserializer would need a server, so build the few fields the gate reads.
    let image = aws_sdk_imagebuilder::types::Image::builder()
        .arn(sample_image_arn(build))
        .name("vscode-host")
        .version("1.0.0")
        .state(
            aws_sdk_imagebuilder::types::ImageState::builder()
                .status("AVAILABLE".into())
                .build(),
        )
        .build();
    GetImageOutput::builder().image(image).build()
}

#[tokio::test]
async fn throttling_on_get_image_is_retried_then_succeeds() {
    let rule = mock!(aws_sdk_imagebuilder::Client::get_image)
        .sequence()
        .error(|| {
            GetImageError::generic(
                ErrorMetadata::builder()
                    .code("ThrottlingException")
                    .message("Rate exceeded")
                    .build(),
            )
        })
        .output(|| sample_image_output(7))
        .build();
    let client = mock_client!(aws_sdk_imagebuilder, RuleMode::Sequential, [&rule], |c| c
        .retry_config(fast_retries()));

    let image = imagebuilder::get_image(&client, &sample_image_arn(7))
        .await
        .unwrap();

    assert_eq!(image.version.build, 7);
    assert_eq!(rule.num_calls(), 2);
}

#[tokio::test]
async fn a_5xx_that_persists_is_a_transient_error_naming_the_call_and_the_image() {
    let rule = mock!(aws_sdk_imagebuilder::Client::get_image)
        .sequence()
        .http_status(503, None)
        .times(3)
        .build();
    let client = mock_client!(aws_sdk_imagebuilder, RuleMode::Sequential, [&rule], |c| c
        .retry_config(fast_retries()));

    let err = imagebuilder::get_image(&client, &sample_image_arn(7))
        .await
        .unwrap_err();

    assert_eq!(rule.num_calls(), 3, "the SDK retried the 5xx");
    assert!(err.is_transient(), "{err:?}");
    assert!(
        err.to_string()
            .starts_with(&format!("GetImage on {} failed", sample_image_arn(7))),
        "{err}"
    );
}

#[tokio::test]
async fn an_image_that_does_not_exist_fails_the_invocation_and_changes_nothing() {
    let rule = mock!(aws_sdk_imagebuilder::Client::get_image).then_error(|| {
        GetImageError::generic(
            ErrorMetadata::builder()
                .code("ResourceNotFoundException")
                .message("Image not found")
                .build(),
        )
    });
    let mut bed = TestBed::start().await;
    bed.clients.imagebuilder = mock_client!(aws_sdk_imagebuilder, [&rule]);

    let err = bed
        .promoter(&[])
        .handle(&read_event("image-available.json"), "r", now())
        .await
        .unwrap_err();

    let text = err.to_string();
    assert!(
        text.contains(
            "GetImage on arn:aws:imagebuilder:us-east-1:123456789012:image/vscode-host/1.0.0/7"
        ),
        "{text}"
    );
    assert!(text.contains("Image not found"), "{text}");
    let diagnostic: lambda_runtime::Diagnostic = err.into();
    assert_eq!(diagnostic.error_type, "AwsCallFailed");
    assert_eq!(bed.pointer().await.as_deref(), Some(SEEDED_AMI));
    assert!(bed.notifications().await.is_empty());
}

#[tokio::test]
async fn a_pointer_value_aws_silently_drops_fails_loudly_and_leaves_no_ami_marked_promoted() {
    // PutParameter answers success, but the value never shows up: what AWS does when the
    // caller lacks ec2:DescribeImages for an aws:ec2:image parameter.
    let put = mock!(aws_sdk_ssm::Client::put_parameter)
        .then_output(|| PutParameterOutput::builder().version(2).build());
    let get = mock!(aws_sdk_ssm::Client::get_parameter).then_output(|| {
        GetParameterOutput::builder()
            .parameter(
                Parameter::builder()
                    .name(integration_tests::POINTER)
                    .value(SEEDED_AMI)
                    .version(1)
                    .build(),
            )
            .build()
    });
    let mut bed = TestBed::start().await;
    let moto_ssm = bed.clients.ssm.clone();
    bed.clients.ssm = mock_client!(aws_sdk_ssm, RuleMode::MatchAny, [&put, &get]);

    let err = bed
        .promoter(&[("POINTER_READBACK_SECONDS", "1")])
        .handle(&read_event("image-available.json"), "r1", now())
        .await
        .unwrap_err();

    assert!(
        err.to_string().contains(&format!("holds {SEEDED_AMI}")),
        "{err}"
    );
    assert!(err.to_string().contains("ec2:DescribeImages"), "{err}");
    assert!(
        get.num_calls() >= 2,
        "the pointer was read back until the deadline"
    );
    assert_eq!(
        bed.ami_tag(&sample_ami(7), "promotion-status")
            .await
            .as_deref(),
        Some("promotion-failed")
    );
    assert_eq!(
        bed.ami_tag(SEEDED_AMI, "promotion-status").await.as_deref(),
        Some("promoted"),
        "nothing retired"
    );
    let notes = bed.notifications().await;
    assert_eq!(notes.len(), 1);
    assert_eq!(
        notes[0].attribute("event_type"),
        Some("image.promotion-failed")
    );
    let diagnostic: lambda_runtime::Diagnostic = err.into();
    assert_eq!(diagnostic.error_type, "PointerNotUpdated");

    // The claim and the pointer lock were released: a retry once permissions are fixed works.
    bed.clients.ssm = moto_ssm;
    let retry = bed
        .promoter(&[])
        .handle(&read_event("image-available.json"), "r2", now())
        .await
        .unwrap();
    assert_eq!(retry.decision, "promote");
    assert_eq!(bed.pointer().await, Some(sample_ami(7)));
}

#[tokio::test]
async fn retiring_schedules_deprecation_at_the_requested_minute() {
    let at = DateTime::parse_from_rfc3339("2027-01-03T04:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let rule = mock!(aws_sdk_ec2::Client::enable_image_deprecation)
        .match_requests(move |r| {
            r.image_id() == Some(SEEDED_AMI)
                && r.deprecate_at().map(|t| t.secs()) == Some(at.timestamp())
        })
        .then_output(|| {
            EnableImageDeprecationOutput::builder()
                .r#return(true)
                .build()
        });
    let client = mock_client!(aws_sdk_ec2, [&rule]);

    ec2::deprecate_ami(&client, SEEDED_AMI, at).await.unwrap();

    assert_eq!(rule.num_calls(), 1);
}
