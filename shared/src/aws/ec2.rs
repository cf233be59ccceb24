//! EC2 AMIs: what EC2 says about one, its tags, and its deprecation.

use aws_sdk_ec2::types::Tag;
use aws_sdk_ec2::Client;
use chrono::{DateTime, Utc};

use super::AwsError;
use crate::image::AmiFacts;

/// DescribeImages for one AMI, deprecated and disabled ones included; `None` when EC2 does not
/// know it (any more).
pub async fn describe_ami(client: &Client, ami_id: &str) -> Result<Option<AmiFacts>, AwsError> {
    let result = client
        .describe_images()
        .image_ids(ami_id)
        .include_deprecated(true)
        .include_disabled(true)
        .send()
        .await;
    let out = match result {
        Ok(out) => out,
        Err(e) => {
            let err = AwsError::new("DescribeImages", ami_id, e);
            if matches!(
                err.code.as_deref(),
                Some("InvalidAMIID.NotFound" | "InvalidAMIID.Unavailable")
            ) {
                return Ok(None);
            }
            return Err(err);
        }
    };
    Ok(out
        .images()
        .iter()
        .find(|i| i.image_id() == Some(ami_id))
        .map(|i| AmiFacts {
            ami_id: ami_id.to_string(),
            state: i
                .state()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            owner_id: i.owner_id().map(str::to_string),
            deprecation_time: i.deprecation_time().map(str::to_string),
            root_device_name: i.root_device_name().map(str::to_string),
            architecture: i.architecture().map(|a| a.as_str().to_string()),
            tags: i
                .tags()
                .iter()
                .filter_map(|t| {
                    Some((
                        t.key()?.to_string(),
                        t.value().unwrap_or_default().to_string(),
                    ))
                })
                .collect(),
        }))
}

pub async fn tag_ami(
    client: &Client,
    ami_id: &str,
    tags: &[(String, String)],
) -> Result<(), AwsError> {
    tag_resources(client, &[ami_id.to_string()], tags).await
}

/// CreateTags on AMIs or instances (adds or overwrites the given keys).
pub async fn tag_resources(
    client: &Client,
    resources: &[String],
    tags: &[(String, String)],
) -> Result<(), AwsError> {
    let tags: Vec<Tag> = tags
        .iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect();
    client
        .create_tags()
        .set_resources(Some(resources.to_vec()))
        .set_tags(Some(tags))
        .send()
        .await
        .map_err(|e| AwsError::new("CreateTags", resources.join(","), e))?;
    Ok(())
}

/// Schedules deprecation; EC2 rounds to the minute and refuses times in the past.
pub async fn deprecate_ami(
    client: &Client,
    ami_id: &str,
    at: DateTime<Utc>,
) -> Result<(), AwsError> {
    client
        .enable_image_deprecation()
        .image_id(ami_id)
        .deprecate_at(aws_smithy_types::DateTime::from_secs(at.timestamp()))
        .send()
        .await
        .map_err(|e| AwsError::new("EnableImageDeprecation", ami_id, e))?;
    Ok(())
}
