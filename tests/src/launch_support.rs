//! Test support for launch-host: a moto server on a free loopback port, the seeding a launch
//! needs (an AMI this account owns behind the pointer, a host security group and instance
//! profile, the topic with an inbox queue, the readiness queue), and a Runtime API runner for
//! the built `launch-host` binary.
//!
//! The emulator and the Runtime API runner are the shared ones in `emulator` and `runtime_api`.

use aws_config::SdkConfig;
use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};

pub const REGION: &str = "us-east-1";
/// moto's default account: AMIs created through it are owned by this id.
pub const ACCOUNT: &str = "123456789012";
pub const POINTER: &str = "/vscode-host/ami/current";
pub const PROFILE: &str = "vscode-host-profile";
/// An Amazon Linux 2023 x86_64 AMI bundled with moto, owned by Amazon (not by this account).
pub const AMAZON_AMI: &str = "ami-03c3da4cfa8e8943a";

pub use crate::emulator::Moto;

/// Where hosts go: a subnet, the host security group (no ingress) and the readiness queue.
pub struct HostInfra {
    pub subnet_id: String,
    pub security_group_id: String,
    pub readiness_queue_url: String,
}

/// Creates the host network pieces and the readiness queue. The instance profile is created
/// separately with [`Moto::create_instance_profile`].
pub async fn seed_host_infra(config: &SdkConfig) -> HostInfra {
    let ec2 = aws_sdk_ec2::Client::new(config);
    let sqs = aws_sdk_sqs::Client::new(config);

    let vpc = ec2.describe_vpcs().send().await.unwrap().vpcs()[0]
        .vpc_id()
        .unwrap()
        .to_string();
    let subnet_id = ec2.describe_subnets().send().await.unwrap().subnets()[0]
        .subnet_id()
        .unwrap()
        .to_string();
    let group = ec2
        .create_security_group()
        .group_name("vscode-hosts")
        .description("VS Code hosts - no inbound")
        .vpc_id(vpc)
        .send()
        .await
        .unwrap();
    let security_group_id = group.group_id().unwrap().to_string();

    let readiness_queue_url = sqs
        .create_queue()
        .queue_name("host-readiness")
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string();
    HostInfra {
        subnet_id,
        security_group_id,
        readiness_queue_url,
    }
}

/// What a launch needs, created in moto.
#[derive(Debug, Clone)]
pub struct Seeded {
    pub ami_id: String,
    pub subnet_id: String,
    pub security_group_id: String,
    pub topic_arn: String,
    pub readiness_queue_url: String,
    /// Subscribed to the topic, so tests read what owners would receive.
    pub inbox_url: String,
}

/// Registers an AMI owned by this account, the way Image Builder leaves one.
pub async fn register_ami(ec2: &aws_sdk_ec2::Client, name: &str, image_arn: &str) -> String {
    let builder = ec2
        .run_instances()
        .image_id(AMAZON_AMI)
        .min_count(1)
        .max_count(1)
        .send()
        .await
        .unwrap();
    let builder_id = builder.instances()[0].instance_id().unwrap().to_string();
    let ami = ec2
        .create_image()
        .instance_id(&builder_id)
        .name(name)
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Image)
                .tags(
                    Tag::builder()
                        .key("source-image-arn")
                        .value(image_arn)
                        .build(),
                )
                .tags(
                    Tag::builder()
                        .key("promotion-status")
                        .value("promoted")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap()
        .image_id()
        .unwrap()
        .to_string();
    ec2.terminate_instances()
        .instance_ids(builder_id)
        .send()
        .await
        .unwrap();
    ami
}

pub async fn point_at(ssm: &aws_sdk_ssm::Client, ami_id: &str) {
    ssm.put_parameter()
        .name(POINTER)
        .value(ami_id)
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .data_type("aws:ec2:image")
        .overwrite(true)
        .send()
        .await
        .unwrap();
}

pub async fn seed(moto: &Moto, config: &SdkConfig) -> Seeded {
    let ec2 = aws_sdk_ec2::Client::new(config);
    let ssm = aws_sdk_ssm::Client::new(config);
    let sns = aws_sdk_sns::Client::new(config);
    let sqs = aws_sdk_sqs::Client::new(config);

    moto.create_instance_profile(PROFILE).await;
    let ami_id = register_ami(
        &ec2,
        "vscode-host-2026-12-04",
        "arn:aws:imagebuilder:us-east-1:123456789012:image/vscode-host/1.0.0/7",
    )
    .await;
    point_at(&ssm, &ami_id).await;

    let HostInfra {
        subnet_id,
        security_group_id,
        readiness_queue_url,
    } = seed_host_infra(config).await;

    let topic_arn = sns
        .create_topic()
        .name("vscode-host")
        .send()
        .await
        .unwrap()
        .topic_arn()
        .unwrap()
        .to_string();
    let inbox_url = sqs
        .create_queue()
        .queue_name("inbox")
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string();
    let inbox_arn = format!("arn:aws:sqs:{REGION}:{ACCOUNT}:inbox");
    sns.subscribe()
        .topic_arn(&topic_arn)
        .protocol("sqs")
        .endpoint(inbox_arn)
        .send()
        .await
        .unwrap();

    Seeded {
        ami_id,
        subnet_id,
        security_group_id,
        topic_arn,
        readiness_queue_url,
        inbox_url,
    }
}

/// The launch-host environment for a seeded moto, plus `extra` (which wins).
pub fn launch_env(seeded: &Seeded, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> = [
        ("POINTER_PARAMETER", POINTER),
        ("TOPIC_ARN", seeded.topic_arn.as_str()),
        ("ACCOUNT_ID", ACCOUNT),
        ("AWS_REGION", REGION),
        ("HOST_SUBNET_ID", seeded.subnet_id.as_str()),
        ("HOST_SECURITY_GROUP_ID", seeded.security_group_id.as_str()),
        ("HOST_INSTANCE_PROFILE", PROFILE),
        ("READINESS_QUEUE_URL", seeded.readiness_queue_url.as_str()),
        ("READINESS_WAIT_SECONDS", "0"),
        ("READINESS_RECHECK_SECONDS", "0"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in extra {
        vars.retain(|(name, _)| name != k);
        vars.push((k.to_string(), v.to_string()));
    }
    vars
}

pub use crate::seed::drain;
