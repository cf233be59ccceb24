//! The launch-host binary through the Lambda Runtime API (`cargo lambda watch`), fed the
//! samples in `events/`, against moto: what a developer sees from `aws lambda invoke`.

use integration_tests::launch_support::*;
use serde_json::Value;

#[tokio::test]
async fn the_function_launches_on_request_refuses_bad_hours_and_replaces_after_a_promotion() {
    let moto = Moto::start().await;
    let config = moto.sdk_config().await;
    let seeded = seed(&moto, &config).await;
    let env = launch_env(
        &seeded,
        &[(
            "STANDING_HOSTS",
            r#"[{"owner":"bob","team":"platform","instance_type":"t3.large"}]"#,
        )],
    );
    let function = LambdaRunner::start(&env, &moto).await;

    let launched = function.invoke("launch-request.json");
    assert_success("invoke launch-request.json", &launched);
    let outcome: Value = serde_json::from_slice(&launched.stdout).expect("the outcome is JSON");
    let host = &outcome["hosts"][0];
    assert_eq!(host["action"], "launched", "{outcome:#}");
    let kit = host["connection_kit"].as_str().unwrap();
    assert!(kit.contains(host["instance_id"].as_str().unwrap()), "{kit}");
    assert!(kit.contains("AWS-StartPortForwardingSession"), "{kit}");

    let refused = function.invoke("launch-request-bad-hours.json");
    assert!(
        !refused.status.success(),
        "a bad request fails the invocation"
    );
    let shown = format!(
        "{}{}",
        String::from_utf8_lossy(&refused.stdout),
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(
        shown.contains("InvalidRequest") && shown.contains("from 1 to 72"),
        "{shown}"
    );

    let replaced = function.invoke("launch-after-promotion.json");
    assert_success("invoke launch-after-promotion.json", &replaced);
    let outcome: Value = serde_json::from_slice(&replaced.stdout).unwrap();
    assert_eq!(outcome["trigger"], "promotion", "{outcome:#}");
    assert_eq!(outcome["hosts"][0]["owner"], "bob");
    assert_eq!(outcome["hosts"][0]["action"], "launched");
}
