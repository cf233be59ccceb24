//! Puts the emulator in the state a real account would be in after a few nightly builds, and
//! reads back what a person would look at: the pointer, AMI tags, the notifications.

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};
use aws_sdk_ec2::types::Tag;
use serde_json::Value;
use shared::aws::Clients;

use crate::{
    sample_ami, sample_image_arn, LEDGER_TABLE, POINTER, QUEUE_NAME, SEEDED_AMI, TOPIC_NAME,
};

/// Builds that exist as AMIs in the emulator (see tests/fixtures/emulator-amis.json).
pub const SAMPLE_BUILDS: [u32; 8] = [5, 6, 7, 10, 11, 12, 13, 14];

/// Names of what `seed` created.
#[derive(Debug, Clone)]
pub struct Seeded {
    pub topic_arn: String,
    pub queue_url: String,
}

/// SDK clients against the emulator, with Image Builder on its loopback endpoint.
pub fn clients(config: &SdkConfig, imagebuilder_url: &str) -> Clients {
    let mut clients = Clients::from_config(config);
    let ib = aws_sdk_imagebuilder::config::Builder::from(config)
        .endpoint_url(imagebuilder_url)
        .build();
    clients.imagebuilder = aws_sdk_imagebuilder::Client::from_conf(ib);
    clients
}

/// Creates the ledger table, the topic with a queue subscribed, the Image Builder tags on the
/// sample AMIs, and a pointer that already names build 1.0.0/6.
pub async fn seed(config: &SdkConfig) -> Seeded {
    let ec2 = aws_sdk_ec2::Client::new(config);
    let ssm = aws_sdk_ssm::Client::new(config);
    let sns = aws_sdk_sns::Client::new(config);
    let sqs = aws_sdk_sqs::Client::new(config);
    let ddb = aws_sdk_dynamodb::Client::new(config);

    ddb.create_table()
        .table_name(LEDGER_TABLE)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("creating the ledger table");

    let topic_arn = sns
        .create_topic()
        .name(TOPIC_NAME)
        .send()
        .await
        .expect("topic")
        .topic_arn
        .unwrap();
    let queue_url = sqs
        .create_queue()
        .queue_name(QUEUE_NAME)
        .send()
        .await
        .expect("queue")
        .queue_url
        .unwrap();
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("queue arn")
        .attributes
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                .cloned()
        })
        .unwrap();
    sns.subscribe()
        .topic_arn(&topic_arn)
        .protocol("sqs")
        .endpoint(queue_arn)
        .send()
        .await
        .expect("subscribe");

    // The tags Image Builder itself puts on the AMIs it creates.
    for build in SAMPLE_BUILDS {
        ec2.create_tags()
            .resources(sample_ami(build))
            .tags(
                Tag::builder()
                    .key("CreatedBy")
                    .value("EC2 Image Builder")
                    .build(),
            )
            .tags(
                Tag::builder()
                    .key("Ec2ImageBuilderArn")
                    .value(sample_image_arn(build))
                    .build(),
            )
            .send()
            .await
            .expect("tagging a sample AMI");
    }

    // Build 1.0.0/6 was promoted last night.
    ssm.put_parameter()
        .name(POINTER)
        .value(SEEDED_AMI)
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .data_type("aws:ec2:image")
        .send()
        .await
        .expect("seeding the pointer");
    ec2.create_tags()
        .resources(SEEDED_AMI)
        .tags(
            Tag::builder()
                .key("promotion-status")
                .value("promoted")
                .build(),
        )
        .send()
        .await
        .expect("tagging the seeded AMI");
    ddb.put_item()
        .table_name(LEDGER_TABLE)
        .item("pk", AttributeValue::S(format!("pointer#{POINTER}")))
        .item("image_arn", AttributeValue::S(sample_image_arn(6)))
        .item(
            "version_key",
            AttributeValue::S("0000000001.0000000000.0000000000.0000000006".into()),
        )
        .item("ami_id", AttributeValue::S(SEEDED_AMI.into()))
        .item(
            "promoted_at",
            AttributeValue::S("2026-12-03T03:50:00Z".into()),
        )
        .send()
        .await
        .expect("seeding the ledger");

    Seeded {
        topic_arn,
        queue_url,
    }
}

/// A notification as the subscribed queue received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub subject: String,
    pub message: String,
    pub attributes: Vec<(String, String)>,
}

impl Received {
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Drains the queue: every message body parsed as JSON (`null` when it is not JSON).
pub async fn drain(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> Vec<Value> {
    let mut bodies = Vec::new();
    loop {
        let page = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .send()
            .await
            .expect("receiving from the queue");
        if page.messages().is_empty() {
            return bodies;
        }
        for m in page.messages() {
            bodies.push(serde_json::from_str(m.body().unwrap_or("null")).unwrap_or(Value::Null));
            if let Some(handle) = m.receipt_handle() {
                sqs.delete_message()
                    .queue_url(queue_url)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .expect("deleting a received message");
            }
        }
    }
}

/// Drains the subscribed queue and reads each SNS envelope.
pub async fn notifications(config: &SdkConfig, queue_url: &str) -> Vec<Received> {
    let sqs = aws_sdk_sqs::Client::new(config);
    drain(&sqs, queue_url)
        .await
        .into_iter()
        .map(|envelope| {
            let mut attributes: Vec<(String, String)> = envelope["MessageAttributes"]
                .as_object()
                .map(|o| {
                    o.iter()
                        .map(|(k, v)| {
                            (
                                k.clone(),
                                v["Value"].as_str().unwrap_or_default().to_string(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            attributes.sort();
            Received {
                subject: envelope["Subject"].as_str().unwrap_or_default().to_string(),
                message: envelope["Message"].as_str().unwrap_or_default().to_string(),
                attributes,
            }
        })
        .collect()
}

/// The tags EC2 holds for an AMI, sorted.
pub async fn ami_tags(config: &SdkConfig, ami_id: &str) -> Vec<(String, String)> {
    let ec2 = aws_sdk_ec2::Client::new(config);
    let out = ec2
        .describe_images()
        .image_ids(ami_id)
        .send()
        .await
        .expect("describe image");
    let mut tags: Vec<(String, String)> = out
        .images()
        .first()
        .map(|i| {
            i.tags()
                .iter()
                .map(|t| {
                    (
                        t.key().unwrap_or_default().to_string(),
                        t.value().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    tags.sort();
    tags
}

/// The AWS part of a function's environment: region, dummy credentials, no instance metadata,
/// every endpoint on the emulator.
pub fn aws_env(moto_url: &str) -> Vec<(String, String)> {
    [
        ("AWS_REGION", crate::REGION),
        ("AWS_DEFAULT_REGION", crate::REGION),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_ENDPOINT_URL", moto_url),
        ("AWS_MAX_ATTEMPTS", "2"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Environment of promote-image pointed at the emulator and the Image Builder loopback.
pub fn function_env(
    moto_url: &str,
    imagebuilder_url: &str,
    topic_arn: &str,
) -> Vec<(String, String)> {
    let mut env = aws_env(moto_url);
    env.extend(
        [
            ("AWS_ENDPOINT_URL_IMAGEBUILDER", imagebuilder_url),
            ("POINTER_PARAMETER", POINTER),
            ("TOPIC_ARN", topic_arn),
            ("PIPELINE_ARN", crate::PIPELINE_ARN),
            ("IMAGE_ARN_PREFIX", crate::IMAGE_ARN_PREFIX),
            ("LEDGER_TABLE", LEDGER_TABLE),
            ("POINTER_READBACK_SECONDS", "5"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    env
}
