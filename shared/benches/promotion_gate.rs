//! Handler time excluding AWS: the promotion gate on the observation of a tested image, once
//! when it promotes and once when a finding blocks it. Run by `scripts/bench.sh`, or with
//! `cargo bench -p shared --bench promotion_gate`.

use std::hint::black_box;

use chrono::{DateTime, Utc};
use criterion::{criterion_group, criterion_main, Criterion};
use shared::image::{AmiFacts, BuildVersion, FindingCounts, ImageFacts, OutputAmi, Severity};
use shared::promotion::{decide, CurrentPromotion, Decision, GatePolicy, Observation};

const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";

/// Build 1.0.0/7, tested and scanned, with AMIs here and in two other regions.
fn image() -> ImageFacts {
    let ami = |region: &str, id: &str| OutputAmi {
        region: region.into(),
        account_id: Some(ACCOUNT.into()),
        ami_id: id.into(),
        name: Some(format!("vscode-host 1.0.0/7 {region}")),
    };
    ImageFacts {
        arn: format!("arn:aws:imagebuilder:{REGION}:{ACCOUNT}:image/vscode-host/1.0.0/7"),
        name: "vscode-host".into(),
        version: BuildVersion {
            major: 1,
            minor: 0,
            patch: 0,
            build: 7,
        },
        status: "AVAILABLE".into(),
        reason: None,
        failure: None,
        pipeline_arn: Some(format!(
            "arn:aws:imagebuilder:{REGION}:{ACCOUNT}:image-pipeline/vscode-host"
        )),
        pipeline_name: Some("vscode-host".into()),
        tests_enabled: true,
        scanning_enabled: true,
        scan_status: Some("COMPLETED".into()),
        scan_reason: None,
        amis: vec![
            ami(REGION, "ami-0c0ffee0000000007"),
            ami("eu-west-1", "ami-0eu0000000000007"),
            ami("ap-southeast-2", "ami-0ap0000000000007"),
        ],
    }
}

/// What the function gathers before deciding: the AMI as EC2 sees it, the scan's findings,
/// the pointer on build 1.0.0/6.
fn observe(image: &ImageFacts, findings: FindingCounts) -> Observation<'_> {
    Observation {
        image,
        account: ACCOUNT,
        region: REGION,
        findings: Some(findings),
        ami: Some(AmiFacts {
            ami_id: "ami-0c0ffee0000000007".into(),
            state: "available".into(),
            owner_id: Some(ACCOUNT.into()),
            deprecation_time: None,
            root_device_name: None,
            architecture: None,
            tags: vec![
                ("CreatedBy".into(), "EC2 Image Builder".into()),
                ("Ec2ImageBuilderArn".into(), image.arn.clone()),
            ],
        }),
        current: Some(CurrentPromotion {
            image_arn: format!("arn:aws:imagebuilder:{REGION}:{ACCOUNT}:image/vscode-host/1.0.0/6"),
            version: BuildVersion {
                major: 1,
                minor: 0,
                patch: 0,
                build: 6,
            },
            ami_id: "ami-0c0ffee0000000006".into(),
        }),
        pointer_value: Some("ami-0c0ffee0000000006".into()),
    }
}

fn promotion_gate(c: &mut Criterion) {
    let policy = GatePolicy {
        severity_threshold: Severity::High,
        require_scan: true,
        deprecate_after_days: 30,
    };
    let now: DateTime<Utc> = DateTime::parse_from_rfc3339("2026-12-04T04:00:00Z")
        .unwrap()
        .into();
    let image = image();
    let clean = observe(
        &image,
        FindingCounts {
            medium: 3,
            low: 12,
            informational: 40,
            ..Default::default()
        },
    );
    let critical = observe(
        &image,
        FindingCounts {
            critical: 2,
            high: 5,
            medium: 9,
            ..Default::default()
        },
    );

    // The cases must decide as named, or the numbers would describe something else.
    assert!(matches!(decide(&clean, &policy, now), Decision::Promote(_)));
    assert!(matches!(
        decide(&critical, &policy, now),
        Decision::Block { .. }
    ));

    let mut group = c.benchmark_group("promotion_gate");
    group.bench_function("promote", |b| {
        b.iter(|| decide(black_box(&clean), black_box(&policy), black_box(now)))
    });
    group.bench_function("block_findings", |b| {
        b.iter(|| decide(black_box(&critical), black_box(&policy), black_box(now)))
    });
    group.finish();
}

criterion_group!(benches, promotion_gate);
criterion_main!(benches);
