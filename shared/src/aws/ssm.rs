//! The pointer: an SSM parameter of DataType `aws:ec2:image` naming the promoted AMI.

use std::time::Duration;

use aws_sdk_ssm::types::ParameterType;
use aws_sdk_ssm::Client;

use super::AwsError;

/// The SSM label that marks the version holding the previously promoted AMI.
pub const PREVIOUS_LABEL: &str = "previous";

/// The AMI the pointer names now; `None` when the parameter does not exist yet.
pub async fn read_pointer(client: &Client, name: &str) -> Result<Option<String>, AwsError> {
    match client.get_parameter().name(name).send().await {
        Ok(out) => Ok(out.parameter().and_then(|p| p.value()).map(str::to_string)),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_parameter_not_found()) =>
        {
            Ok(None)
        }
        Err(e) => Err(AwsError::new("GetParameter", name, e)),
    }
}

/// Writes the pointer; returns the parameter version SSM assigned.
pub async fn write_pointer(client: &Client, name: &str, ami_id: &str) -> Result<i64, AwsError> {
    let out = client
        .put_parameter()
        .name(name)
        .value(ami_id)
        .r#type(ParameterType::String)
        .data_type("aws:ec2:image")
        .overwrite(true)
        .send()
        .await
        .map_err(|e| AwsError::new("PutParameter", name, e))?;
    Ok(out.version())
}

/// Reads the pointer until it names `ami_id` or `timeout` passes. AWS validates an
/// `aws:ec2:image` value after PutParameter returns and silently drops one it cannot validate,
/// so a successful PutParameter alone proves nothing.
pub async fn confirm_pointer(
    client: &Client,
    name: &str,
    ami_id: &str,
    timeout: Duration,
) -> Result<Result<(), Option<String>>, AwsError> {
    let started = tokio::time::Instant::now();
    let mut wait = Duration::from_millis(250);
    loop {
        let seen = read_pointer(client, name).await?;
        if seen.as_deref() == Some(ami_id) {
            return Ok(Ok(()));
        }
        if started.elapsed() + wait > timeout {
            return Ok(Err(seen));
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(5));
    }
}

/// Moves a label onto a version of the pointer (labels are unique per parameter).
pub async fn label_version(
    client: &Client,
    name: &str,
    version: i64,
    label: &str,
) -> Result<(), AwsError> {
    client
        .label_parameter_version()
        .name(name)
        .parameter_version(version)
        .labels(label)
        .send()
        .await
        .map_err(|e| AwsError::new("LabelParameterVersion", format!("{name}:{version}"), e))?;
    Ok(())
}

/// One version of the pointer, oldest first in [`history`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PointerVersion {
    pub version: i64,
    pub value: String,
    pub labels: Vec<String>,
}

pub async fn history(client: &Client, name: &str) -> Result<Vec<PointerVersion>, AwsError> {
    let mut versions = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = client
            .get_parameter_history()
            .name(name)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| AwsError::new("GetParameterHistory", name, e))?;
        versions.extend(page.parameters().iter().map(|p| PointerVersion {
            version: p.version(),
            value: p.value().unwrap_or_default().to_string(),
            labels: p.labels().to_vec(),
        }));
        match page.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => break,
        }
    }
    versions.sort_by_key(|v| v.version);
    Ok(versions)
}
