//! promote-image against moto (EC2, SSM, SNS→SQS, DynamoDB) and the Image Builder loopback,
//! driven with the sample events in `events/`.

use chrono::{DateTime, Utc};
use integration_tests::testbed::TestBed;
use integration_tests::{read_event, sample_ami, sample_image_arn, SEEDED_AMI};
use serde_json::json;

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-12-04T04:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

#[tokio::test]
async fn promotes_the_sample_image_tags_it_moves_the_pointer_and_tells_the_team() {
    let bed = TestBed::start().await;
    let outcome = bed
        .promoter(&[])
        .handle(&read_event("image-available.json"), "req-1", now())
        .await
        .unwrap();

    assert_eq!(outcome.decision, "promote", "{outcome:?}");
    assert_eq!(bed.pointer().await.as_deref(), Some(sample_ami(7).as_str()));

    let tags = bed.ami_tags(&sample_ami(7)).await;
    for expected in [
        ("promotion-status", "promoted"),
        ("promoted-at", "2026-12-04T04:00:00Z"),
        ("build-version", "1.0.0/7"),
        ("source-image-arn", sample_image_arn(7).as_str()),
    ] {
        assert!(
            tags.contains(&(expected.0.into(), expected.1.into())),
            "{expected:?} not in {tags:?}"
        );
    }
    assert_eq!(
        bed.ami_tag(SEEDED_AMI, "promotion-status").await.as_deref(),
        Some("retired")
    );
    assert_eq!(
        bed.ami_tag(SEEDED_AMI, "superseded-by").await,
        Some(sample_ami(7))
    );

    // History: the seeded AMI is labelled `previous`, so rollback is one command.
    let history = bed.pointer_history().await;
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].value, SEEDED_AMI);
    assert_eq!(history[0].labels, vec!["previous".to_string()]);

    let notes = bed.notifications().await;
    assert_eq!(notes.len(), 1, "{notes:?}");
    let note = &notes[0];
    assert_eq!(note.attribute("event_type"), Some("image.promoted"));
    assert_eq!(note.attribute("pipeline"), Some("vscode-host"));
    assert_eq!(note.attribute("severity"), Some("info"));
    assert_eq!(
        note.subject,
        format!("Promoted vscode-host 1.0.0/7 ({})", sample_ami(7))
    );
    assert!(
        note.message.contains("aws ssm put-parameter --overwrite"),
        "{}",
        note.message
    );
    assert!(note
        .message
        .contains(&format!("Previous AMI: {SEEDED_AMI}")));
    assert!(
        note.message
            .contains("Findings: critical 0, high 0, medium 1, low 1"),
        "{}",
        note.message
    );

    // moto has no EnableImageDeprecation: the promotion stands and the gap is reported.
    assert!(
        outcome
            .warnings
            .iter()
            .any(|w| w.contains("could not schedule deprecation")),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn the_same_event_delivered_twice_promotes_once_and_notifies_once() {
    let bed = TestBed::start().await;
    let promoter = bed.promoter(&[]);
    let event = read_event("image-available.json");

    let first = promoter.handle(&event, "req-1", now()).await.unwrap();
    let second = promoter.handle(&event, "req-2", now()).await.unwrap();

    assert_eq!(first.decision, "promote");
    assert_eq!(second.decision, "already-handled");
    assert!(second.reason.contains("promote"), "{second:?}");
    assert_eq!(bed.pointer_history().await.len(), 2);
    assert_eq!(bed.notifications().await.len(), 1);
}

#[tokio::test]
async fn two_deliveries_at_the_same_moment_promote_once_and_notify_once() {
    let bed = TestBed::start().await;
    let (a, b) = (bed.promoter(&[]), bed.promoter(&[]));
    let event = read_event("image-available.json");

    let (ra, rb) = tokio::join!(
        a.handle(&event, "req-a", now()),
        b.handle(&event, "req-b", now())
    );

    let decisions = [ra.unwrap().decision, rb.unwrap().decision];
    assert_eq!(
        decisions.iter().filter(|d| *d == "promote").count(),
        1,
        "{decisions:?}"
    );
    assert_eq!(
        decisions.iter().filter(|d| *d == "already-handled").count(),
        1,
        "{decisions:?}"
    );
    assert_eq!(bed.pointer_history().await.len(), 2);
    assert_eq!(bed.notifications().await.len(), 1);
}

#[tokio::test]
async fn an_older_build_arriving_after_a_newer_one_never_moves_the_pointer_back() {
    let bed = TestBed::start().await;
    let promoter = bed.promoter(&[]);
    promoter
        .handle(&read_event("image-available.json"), "req-1", now())
        .await
        .unwrap();

    let older = promoter
        .handle(
            &read_event("image-available-older-build.json"),
            "req-2",
            now(),
        )
        .await
        .unwrap();

    assert_eq!(older.decision, "stale", "{older:?}");
    assert_eq!(bed.pointer().await, Some(sample_ami(7)));
    assert_eq!(bed.ami_tag(&sample_ami(5), "promotion-status").await, None);
    let notes = bed.notifications().await;
    assert_eq!(
        notes.last().unwrap().attribute("event_type"),
        Some("image.promotion-stale")
    );
    assert_eq!(
        notes.last().unwrap().attribute("image_version"),
        Some("1.0.0/5")
    );
}

#[tokio::test]
async fn critical_findings_block_promotion_and_alert_the_team() {
    let bed = TestBed::start().await;
    let outcome = bed
        .promoter(&[])
        .handle(
            &read_event("image-available-critical-findings.json"),
            "r",
            now(),
        )
        .await
        .unwrap();

    assert_eq!(outcome.decision, "block");
    assert!(
        outcome.reason.contains("3 finding(s) at or above HIGH"),
        "{outcome:?}"
    );
    assert_eq!(bed.pointer().await.as_deref(), Some(SEEDED_AMI));
    assert_eq!(bed.ami_tag(&sample_ami(13), "promotion-status").await, None);

    let notes = bed.notifications().await;
    assert_eq!(notes.len(), 1);
    assert_eq!(
        notes[0].attribute("event_type"),
        Some("image.promotion-blocked")
    );
    assert_eq!(notes[0].attribute("severity"), Some("critical"));
    assert_eq!(notes[0].attribute("reason"), Some("findings"));
}

#[tokio::test]
async fn a_running_scan_defers_and_the_scan_completed_event_then_promotes() {
    let bed = TestBed::start().await;
    let promoter = bed.promoter(&[]);

    let deferred = promoter
        .handle(
            &read_event("image-available-scan-pending.json"),
            "r1",
            now(),
        )
        .await
        .unwrap();
    assert_eq!(deferred.decision, "defer", "{deferred:?}");
    assert!(deferred.reason.contains("SCANNING"));
    assert_eq!(bed.pointer().await.as_deref(), Some(SEEDED_AMI));
    assert!(bed.notifications().await.is_empty());

    // The scan finishes; Image Builder now reports it as completed.
    let arn = sample_image_arn(12);
    let mut image = serde_json::from_str::<serde_json::Value>(
        &std::fs::read_to_string(
            integration_tests::events_dir()
                .join("imagebuilder/get-image-vscode-host-1.0.0-12.json"),
        )
        .unwrap(),
    )
    .unwrap();
    image["image"]["scanState"] = json!({"status": "COMPLETED"});
    bed.imagebuilder.set_image(&arn, image);

    let promoted = promoter
        .handle(&read_event("image-scan-completed.json"), "r2", now())
        .await
        .unwrap();
    assert_eq!(promoted.decision, "promote", "{promoted:?}");
    assert_eq!(bed.pointer().await, Some(sample_ami(12)));
}

#[tokio::test]
async fn an_image_built_without_tests_is_not_promoted() {
    let bed = TestBed::start().await;
    let outcome = bed
        .promoter(&[])
        .handle(
            &read_event("image-available-tests-disabled.json"),
            "r",
            now(),
        )
        .await
        .unwrap();
    assert_eq!(outcome.decision, "block");
    assert!(outcome.reason.contains("tests were not enabled"));
    assert_eq!(bed.pointer().await.as_deref(), Some(SEEDED_AMI));
}

#[tokio::test]
async fn amis_in_other_regions_and_accounts_are_listed_and_left_alone() {
    let bed = TestBed::start().await;
    let outcome = bed
        .promoter(&[])
        .handle(&read_event("image-available-multi-region.json"), "r", now())
        .await
        .unwrap();

    assert_eq!(outcome.decision, "promote");
    assert_eq!(bed.pointer().await, Some(sample_ami(10)));
    let note = &bed.notifications().await[0];
    for line in [
        "ami-0e0ffee0000000010 in eu-west-1 (account 123456789012)",
        "ami-0a0ffee0000000010 in ap-southeast-2 (account 123456789012)",
        "ami-0b0ffee0000000010 in us-east-1 (account 210987654321)",
    ] {
        assert!(
            note.message.contains(line),
            "{line} missing from:\n{}",
            note.message
        );
    }
}

#[tokio::test]
async fn a_failed_build_alerts_with_the_reason_and_its_failure_context() {
    let bed = TestBed::start().await;
    let outcome = bed
        .promoter(&[])
        .handle(&read_event("image-failed.json"), "r", now())
        .await
        .unwrap();

    assert_eq!(outcome.decision, "alert");
    let note = &bed.notifications().await[0];
    assert_eq!(note.attribute("event_type"), Some("image.build-failed"));
    assert_eq!(note.attribute("severity"), Some("critical"));
    assert!(
        note.message
            .contains("code-server did not answer on 127.0.0.1:8080"),
        "{}",
        note.message
    );
    assert!(
        note.message.contains("step RunTestComponents"),
        "{}",
        note.message
    );
    assert!(
        note.message
            .contains("Failed to connect to 127.0.0.1 port 8080"),
        "{}",
        note.message
    );
}

#[tokio::test]
async fn a_cancelled_build_alerts_once_even_when_delivered_twice() {
    let bed = TestBed::start().await;
    let promoter = bed.promoter(&[]);
    promoter
        .handle(&read_event("image-cancelled.json"), "r1", now())
        .await
        .unwrap();
    promoter
        .handle(&read_event("image-cancelled.json"), "r2", now())
        .await
        .unwrap();

    let notes = bed.notifications().await;
    assert_eq!(notes.len(), 1);
    assert_eq!(
        notes[0].attribute("event_type"),
        Some("image.build-cancelled")
    );
    assert!(notes[0]
        .message
        .contains("Image creation cancelled by user"));
}

#[tokio::test]
async fn images_of_other_pipelines_and_statuses_not_acted_on_change_nothing() {
    let bed = TestBed::start().await;
    let promoter = bed.promoter(&[]);

    let other = promoter
        .handle(&read_event("image-other-pipeline.json"), "r1", now())
        .await
        .unwrap();
    let building = promoter
        .handle(&read_event("image-building.json"), "r2", now())
        .await
        .unwrap();

    assert_eq!(other.decision, "ignore");
    assert!(other.reason.contains("another pipeline"));
    assert_eq!(building.decision, "ignore");
    assert!(building.reason.contains("BUILDING"));
    assert!(
        bed.imagebuilder.requests().is_empty(),
        "no GetImage for ignored events"
    );
    assert!(bed.notifications().await.is_empty());
    assert_eq!(bed.pointer_history().await.len(), 1);
}

#[tokio::test]
async fn a_long_non_ascii_image_name_with_a_newline_is_still_published() {
    let bed = TestBed::start().await;
    let outcome = bed
        .promoter(&[])
        .handle(&read_event("image-available-long-name.json"), "r", now())
        .await
        .unwrap();
    assert_eq!(outcome.decision, "promote", "{outcome:?}");

    let note = &bed.notifications().await[0];
    assert!(
        note.subject.len() <= 99,
        "{} characters",
        note.subject.len()
    );
    assert!(
        note.subject.chars().all(|c| (' '..='~').contains(&c)),
        "{:?}",
        note.subject
    );
    assert!(
        note.message
            .contains("golden image für Entwicklerinnen\nbuilt nightly"),
        "full name in the body"
    );
}

#[tokio::test]
async fn dry_run_notifies_the_plan_and_changes_nothing() {
    let bed = TestBed::start().await;
    let promoter = bed.promoter(&[("DRY_RUN", "true")]);
    let outcome = promoter
        .handle(&read_event("image-available.json"), "r", now())
        .await
        .unwrap();

    assert!(outcome.dry_run);
    assert_eq!(outcome.decision, "promote");
    assert_eq!(bed.pointer_history().await.len(), 1);
    assert_eq!(bed.ami_tag(&sample_ami(7), "promotion-status").await, None);
    assert_eq!(
        bed.ami_tag(SEEDED_AMI, "promotion-status").await.as_deref(),
        Some("promoted")
    );
    let note = &bed.notifications().await[0];
    assert_eq!(note.attribute("event_type"), Some("image.dry-run"));
    assert!(note.subject.starts_with("[dry run] Would promote"));

    // A dry run leaves no claim behind: the real run still promotes.
    let real = bed
        .promoter(&[])
        .handle(&read_event("image-available.json"), "r2", now())
        .await
        .unwrap();
    assert_eq!(real.decision, "promote");
}

#[tokio::test]
async fn an_ami_that_vanished_blocks_promotion_with_its_id() {
    let bed = TestBed::start().await;
    let arn = sample_image_arn(7);
    let mut image: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            integration_tests::events_dir().join("imagebuilder/get-image-vscode-host-1.0.0-7.json"),
        )
        .unwrap(),
    )
    .unwrap();
    image["image"]["outputResources"]["amis"][0]["image"] = json!("ami-0c0ffee0000000099");
    bed.imagebuilder.set_image(&arn, image);

    let outcome = bed
        .promoter(&[])
        .handle(&read_event("image-available.json"), "r", now())
        .await
        .unwrap();
    assert_eq!(outcome.decision, "block");
    assert!(
        outcome.reason.contains("ami-0c0ffee0000000099"),
        "{outcome:?}"
    );
    assert_eq!(bed.pointer().await.as_deref(), Some(SEEDED_AMI));
}

#[tokio::test]
async fn a_body_that_is_not_an_envelope_is_refused_without_side_effects() {
    let bed = TestBed::start().await;
    let err = bed
        .promoter(&[])
        .handle(&read_event("not-an-envelope.json"), "r", now())
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("expected an EventBridge event envelope"),
        "{err}"
    );
    let diagnostic: lambda_runtime::Diagnostic = err.into();
    assert_eq!(diagnostic.error_type, "InvalidEvent");
    assert!(bed.imagebuilder.requests().is_empty());
    assert!(bed.notifications().await.is_empty());
}

#[tokio::test]
async fn a_malformed_image_arn_under_the_prefix_is_refused_without_calling_image_builder() {
    let bed = TestBed::start().await;
    let mut event = read_event("image-available.json");
    event["resources"][0] = json!(format!("{}1.0/7", integration_tests::IMAGE_ARN_PREFIX));

    let err = bed
        .promoter(&[])
        .handle(&event, "r", now())
        .await
        .unwrap_err();

    assert!(err.to_string().contains("<x.y.z>/<build>"), "{err}");
    let diagnostic: lambda_runtime::Diagnostic = err.into();
    assert_eq!(diagnostic.error_type, "InvalidEvent");
    assert!(bed.imagebuilder.requests().is_empty());
}
