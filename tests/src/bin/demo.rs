//! The main job on the local emulator: seed moto as an account after last night's build,
//! run the real promote-image binary behind the Lambda Runtime API, feed it the sample events
//! and show what a person would look at afterwards; then launch-host replaces the standing
//! host from the newly promoted AMI and prints the connection kit. Run with `make demo`.

use std::time::Instant;

use integration_tests::launch_support::{launch_env, seed_host_infra, HostInfra, Seeded, PROFILE};
use integration_tests::runtime_api::FunctionUnderApi;
use integration_tests::seed::{aws_env, function_env};
use integration_tests::testbed::TestBed;
use integration_tests::{sample_ami, POINTER, SEEDED_AMI};

/// The story, in the order EventBridge might deliver it.
const EVENTS: [(&str, &str); 9] = [
    (
        "image-available.json",
        "build 1.0.0/7 finished, tested and scanned",
    ),
    (
        "image-available.json",
        "EventBridge delivers the same event again",
    ),
    (
        "image-available-older-build.json",
        "build 1.0.0/5 finishes late",
    ),
    (
        "image-available-critical-findings.json",
        "build 1.0.0/13 has critical findings",
    ),
    (
        "image-available-scan-pending.json",
        "build 1.0.0/12 is available but its scan still runs",
    ),
    ("image-failed.json", "build 1.0.0/8 failed its tests"),
    ("image-cancelled.json", "build 1.0.0/9 was cancelled"),
    ("image-other-pipeline.json", "an image of another pipeline"),
    (
        "not-an-envelope.json",
        "a body that is not an EventBridge event",
    ),
];

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let started = Instant::now();
    println!("== Starting moto server and the Image Builder loopback on 127.0.0.1");
    let bed = TestBed::start().await;
    println!(
        "   moto: {} (pid {})   Image Builder: {}",
        bed.moto.url,
        bed.moto.pid(),
        bed.imagebuilder.url
    );
    println!(
        "   seeded: topic {} -> queue, ledger table, sample AMIs tagged by Image Builder",
        bed.seeded.topic_arn
    );
    println!("   pointer {POINTER} -> {SEEDED_AMI} (build 1.0.0/6, promoted yesterday)\n");

    let logs = std::env::temp_dir().join(format!("vscode-host-demo-{}", std::process::id()));
    std::fs::create_dir_all(&logs).expect("log directory");
    let env = function_env(&bed.moto.url, &bed.imagebuilder.url, &bed.seeded.topic_arn);
    let function = FunctionUnderApi::start("promote-image", &env, &logs);
    println!(
        "== promote-image (pid {}) polls the Runtime API of `cargo lambda watch` on 127.0.0.1:{}\n",
        function.function_pid(),
        function.port
    );

    for (file, story) in EVENTS {
        println!("-> events/{file}: {story}");
        match function.invoke_event(file) {
            Ok(out) => {
                println!("   decision: {}", out["decision"].as_str().unwrap_or("?"));
                println!("   reason:   {}", out["reason"].as_str().unwrap_or("?"));
                for w in out["warnings"].as_array().into_iter().flatten() {
                    let w = w.as_str().unwrap_or_default();
                    println!("   warning:  {w}");
                    if w.contains("EnableImageDeprecation") {
                        let note = "(moto lacks EnableImageDeprecation; AWS has it)";
                        println!("             {note}");
                    }
                }
            }
            Err(e) => println!("   refused:  {}", error_summary(&e)),
        }
    }

    println!("\n== The pointer {POINTER}");
    println!("   now: {}", bed.pointer().await.unwrap_or_default());
    for v in bed.pointer_history().await {
        let labels = if v.labels.is_empty() {
            String::new()
        } else {
            format!("  [{}]", v.labels.join(", "))
        };
        println!("   version {}: {}{labels}", v.version, v.value);
    }

    for ami in [sample_ami(7), SEEDED_AMI.to_string(), sample_ami(13)] {
        println!("\n== Tags on {ami}");
        for (k, v) in bed.ami_tags(&ami).await {
            println!("   {k} = {v}");
        }
    }

    let notes = bed.notifications().await;
    println!(
        "\n== {} notifications as the subscribed SQS queue received them",
        notes.len()
    );
    for n in notes {
        println!("\n   Subject: {}", n.subject);
        let attrs: Vec<String> = n
            .attributes
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        println!("   Attributes: {}", attrs.join(", "));
        for line in n.message.lines() {
            println!("   | {line}");
        }
    }

    drop(function);
    launch_a_host(&bed, &logs).await;

    drop(bed);
    println!(
        "\n== Stopped every process the demo started. Function log: {}",
        logs.display()
    );
    println!("   Wall time: {:.1} s", started.elapsed().as_secs_f64());
}

/// `cargo lambda invoke` prints the error type, then the message in a box; keep both.
fn error_summary(output: &str) -> String {
    let error_type = output
        .lines()
        .find_map(|l| l.trim().strip_prefix("Error: "))
        .unwrap_or("error")
        .to_string();
    let message: Vec<&str> = output
        .lines()
        .map(|l| l.trim().trim_start_matches(['×', '│']).trim())
        .skip_while(|l| !l.starts_with("expected") && !l.contains("failed"))
        .take_while(|l| !l.is_empty())
        .collect();
    let mut text = String::new();
    for part in message {
        if !text.is_empty() && !text.ends_with('-') {
            text.push(' ');
        }
        text.push_str(part);
    }
    format!("{error_type}: {text}")
}

/// The promotion notification reaches launch-host, which replaces alice's standing host with
/// one from the AMI the pointer now names, and tells her how to connect.
async fn launch_a_host(bed: &TestBed, logs: &std::path::Path) {
    println!("\n== launch-host: the promotion replaces the standing hosts");
    bed.moto.create_instance_profile(PROFILE).await;
    let HostInfra {
        subnet_id,
        security_group_id,
        readiness_queue_url,
    } = seed_host_infra(&bed.config).await;
    let seeded = Seeded {
        ami_id: sample_ami(7),
        subnet_id,
        security_group_id,
        topic_arn: bed.seeded.topic_arn.clone(),
        readiness_queue_url,
        inbox_url: bed.seeded.queue_url.clone(),
    };
    let standing = r#"[{"owner":"alice","team":"platform","hours":8}]"#;
    let mut env = aws_env(&bed.moto.url);
    env.extend(launch_env(
        &seeded,
        &[
            ("STANDING_HOSTS", standing),
            ("DEFAULT_INSTANCE_TYPE", "t4g.large"),
        ],
    ));
    let function = FunctionUnderApi::start("launch-host", &env, logs);
    println!("   standing hosts: {standing}");

    println!("-> events/launch-after-promotion.json: the image.promoted notification arrives");
    let out = match function.invoke_event("launch-after-promotion.json") {
        Ok(out) => out,
        Err(e) => {
            println!("   refused:  {}", error_summary(&e));
            return;
        }
    };
    for host in out["hosts"].as_array().into_iter().flatten() {
        let id = host["instance_id"].as_str().unwrap_or("?");
        println!(
            "   {} host {id} for {}",
            host["action"].as_str().unwrap_or("?"),
            host["owner"]
        );
        print_instance(bed, id).await;
        if let Some(kit) = host["connection_kit"].as_str() {
            println!("\n   Connection kit sent to the owner:");
            for line in kit.lines() {
                println!("   | {line}");
            }
        }
    }
    let notes = bed.notifications().await;
    for n in notes {
        let attrs: Vec<String> = n
            .attributes
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        println!("\n   Queue received: {} [{}]", n.subject, attrs.join(", "));
    }
}

/// What EC2 reports about the host: the settings that keep it private.
async fn print_instance(bed: &TestBed, id: &str) {
    let ec2 = aws_sdk_ec2::Client::new(&bed.config);
    let Ok(out) = ec2.describe_instances().instance_ids(id).send().await else {
        return;
    };
    let Some(i) = out
        .reservations()
        .first()
        .and_then(|r| r.instances().first())
    else {
        return;
    };
    let imds = i.metadata_options();
    println!(
        "   EC2 reports: image {}, public IP {}, key pair {}, IMDS tokens {}, hop limit {}",
        i.image_id().unwrap_or("?"),
        i.public_ip_address().unwrap_or("none"),
        i.key_name().unwrap_or("none"),
        imds.and_then(|m| m.http_tokens())
            .map(|t| t.as_str())
            .unwrap_or("?"),
        imds.and_then(|m| m.http_put_response_hop_limit())
            .unwrap_or_default(),
    );
    let tags: Vec<String> = i
        .tags()
        .iter()
        .map(|t| {
            format!(
                "{}={}",
                t.key().unwrap_or_default(),
                t.value().unwrap_or_default()
            )
        })
        .collect();
    println!("   tags: {}", tags.join(", "));
}
