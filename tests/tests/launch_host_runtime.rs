//! The launch-host binary through the Lambda Runtime API (`cargo lambda watch`), fed the
//! samples in `events/`, against moto: what a developer sees from `aws lambda invoke`.

use integration_tests::launch_support::*;
use integration_tests::runtime_api::FunctionUnderApi;
use integration_tests::seed::aws_env;

#[tokio::test]
async fn the_function_launches_on_request_refuses_bad_hours_and_replaces_after_a_promotion() {
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let seeded = seed(&moto, &config).await;
    let mut env = aws_env(&moto.url);
    env.extend(launch_env(
        &seeded,
        &[(
            "STANDING_HOSTS",
            r#"[{"owner":"bob","team":"platform","instance_type":"t3.large"}]"#,
        )],
    ));
    let logs = std::env::temp_dir().join(format!("launch-runtime-api-{}", std::process::id()));
    std::fs::create_dir_all(&logs).unwrap();
    let function = FunctionUnderApi::start("launch-host", &env, &logs);

    let outcome = function
        .invoke_event("launch-request.json")
        .expect("launch-request.json");
    let host = &outcome["hosts"][0];
    assert_eq!(host["action"], "launched", "{outcome:#}");
    let kit = host["connection_kit"].as_str().unwrap();
    assert!(kit.contains(host["instance_id"].as_str().unwrap()), "{kit}");
    assert!(kit.contains("AWS-StartPortForwardingSession"), "{kit}");

    let refused = function
        .invoke_event("launch-request-bad-hours.json")
        .unwrap_err();
    assert!(
        refused.contains("InvalidRequest") && refused.contains("from 1 to 72"),
        "{refused}"
    );

    let outcome = function
        .invoke_event("launch-after-promotion.json")
        .expect("promotion");
    assert_eq!(outcome["trigger"], "promotion", "{outcome:#}");
    assert_eq!(outcome["hosts"][0]["owner"], "bob");
    assert_eq!(outcome["hosts"][0]["action"], "launched");
}
