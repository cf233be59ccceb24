//! The real promote-image binary behind the Lambda Runtime API emulated by `cargo lambda
//! watch`, invoked with `cargo lambda invoke` on the samples in `events/`.

use integration_tests::runtime_api::FunctionUnderApi;
use integration_tests::seed::function_env;
use integration_tests::testbed::TestBed;
use integration_tests::{sample_ami, SEEDED_AMI};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sample_events_flow_through_the_runtime_api() {
    let bed = TestBed::start().await;
    let logs = tempdir();
    let env = function_env(&bed.moto.url, &bed.imagebuilder.url, &bed.seeded.topic_arn);
    let function = FunctionUnderApi::start("promote-image", &env, &logs);

    let decision = |file: &str| {
        let out = function
            .invoke_event(file)
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        out["decision"].as_str().unwrap_or_default().to_string()
    };
    assert_eq!(decision("image-available.json"), "promote");
    assert_eq!(decision("image-available.json"), "already-handled");
    assert_eq!(decision("image-available-older-build.json"), "stale");
    assert_eq!(decision("image-failed.json"), "alert");
    assert_eq!(decision("image-cancelled.json"), "alert");
    assert_eq!(decision("image-other-pipeline.json"), "ignore");
    assert_eq!(decision("image-available-critical-findings.json"), "block");
    assert_eq!(decision("image-available-scan-pending.json"), "defer");

    let refused = function.invoke_event("not-an-envelope.json").unwrap_err();
    assert!(refused.contains("InvalidEvent"), "{refused}");
    assert!(
        refused.contains("expected an EventBridge event envelope"),
        "{refused}"
    );

    assert_eq!(bed.pointer().await, Some(sample_ami(7)));
    assert_eq!(
        bed.ami_tag(SEEDED_AMI, "promotion-status").await.as_deref(),
        Some("retired")
    );
    let kinds: Vec<String> = bed
        .notifications()
        .await
        .iter()
        .map(|n| n.attribute("event_type").unwrap_or_default().to_string())
        .collect();
    assert_eq!(kinds.len(), 5, "{kinds:?}");
    for expected in [
        "image.promoted",
        "image.promotion-stale",
        "image.build-failed",
        "image.build-cancelled",
        "image.promotion-blocked",
    ] {
        assert!(
            kinds.iter().any(|k| k == expected),
            "{expected} missing from {kinds:?}"
        );
    }

    // The function logs one line per decision with its reason.
    let log = std::fs::read_to_string(&function.log).unwrap();
    assert!(log.contains("promoted"), "{log}");
    assert!(log.contains("decision=\"stale\""), "{log}");
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("promote-runtime-api-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
