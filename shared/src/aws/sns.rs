//! Publishing notifications to the project's SNS topic.

use aws_sdk_sns::types::MessageAttributeValue;
use aws_sdk_sns::Client;

use super::AwsError;
use crate::notify::Notification;

/// Publishes and returns the SNS message id.
pub async fn publish(
    client: &Client,
    topic_arn: &str,
    n: &Notification,
) -> Result<String, AwsError> {
    let mut request = client
        .publish()
        .topic_arn(topic_arn)
        .subject(&n.subject)
        .message(&n.body);
    for (name, value) in &n.attributes {
        let attr = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(value)
            .build()
            .map_err(|e| AwsError::plain("Publish", topic_arn, e.to_string()))?;
        request = request.message_attributes(name, attr);
    }
    let out = request
        .send()
        .await
        .map_err(|e| AwsError::new("Publish", topic_arn, e))?;
    Ok(out.message_id().unwrap_or_default().to_string())
}
