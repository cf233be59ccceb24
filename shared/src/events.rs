//! The EventBridge envelopes the functions accept, parsed with errors that name the expected
//! shape. Image Builder events carry no AMI ids: only the image build version ARN in
//! `resources[0]` and the new status.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use serde::Deserialize;
use serde_json::Value;

pub const IMAGE_BUILDER_SOURCE: &str = "aws.imagebuilder";
pub const STATE_CHANGE: &str = "EC2 Image Builder Image State Change";
pub const CVE_DETECTED: &str = "EC2 Image Builder CVE Detected";

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EventError {
    #[error(
        "expected an EventBridge event envelope (an object with `source`, `detail-type`, \
         `resources` and `detail`), got: {0}"
    )]
    NotAnEnvelope(String),
    #[error("expected source `{IMAGE_BUILDER_SOURCE}`, got `{0}`")]
    WrongSource(String),
    #[error(
        "expected `resources[0]` to hold the image build version ARN, event {event_id} has none"
    )]
    MissingImageArn { event_id: String },
    #[error("expected `detail.state.status` in the image state change event {event_id}")]
    MissingStatus { event_id: String },
    #[error(transparent)]
    BadImageArn(#[from] crate::image::ArnError),
}

/// What an Image Builder event asks the promotion to look at.
#[derive(Debug, Clone, PartialEq)]
pub enum ImageEvent {
    /// The image build changed state; `status` is exactly what the event said.
    StateChange {
        image_arn: String,
        status: String,
        previous_status: Option<String>,
    },
    /// A vulnerability scan of the image finished: time to look at a deferred promotion again.
    ScanCompleted { image_arn: String },
    /// An Image Builder event type this project does not act on.
    Other { detail_type: String },
}

impl ImageEvent {
    pub fn image_arn(&self) -> Option<&str> {
        match self {
            ImageEvent::StateChange { image_arn, .. } | ImageEvent::ScanCompleted { image_arn } => {
                Some(image_arn)
            }
            ImageEvent::Other { .. } => None,
        }
    }
}

/// The parsed envelope plus the fields every decision needs.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub id: String,
    pub account: Option<String>,
    pub region: Option<String>,
    pub event: ImageEvent,
}

#[derive(Debug, Deserialize)]
struct StateDetail {
    state: Option<Status>,
    #[serde(rename = "previous-state")]
    previous_state: Option<Status>,
}

#[derive(Debug, Deserialize)]
struct Status {
    status: Option<String>,
}

/// Parses an invocation payload as an Image Builder EventBridge event.
pub fn parse_image_event(payload: &Value) -> Result<Envelope, EventError> {
    let raw: EventBridgeEvent<Value> = serde_json::from_value(payload.clone())
        .map_err(|e| EventError::NotAnEnvelope(describe_payload(payload, &e)))?;
    let id = raw.id.clone().unwrap_or_else(|| "(no id)".to_string());

    if raw.source != IMAGE_BUILDER_SOURCE {
        return Err(EventError::WrongSource(raw.source));
    }

    let first_resource = raw.resources.as_ref().and_then(|r| r.first()).cloned();
    let event = match raw.detail_type.as_str() {
        STATE_CHANGE => {
            let image_arn = first_resource.ok_or_else(|| EventError::MissingImageArn {
                event_id: id.clone(),
            })?;
            let detail: StateDetail = serde_json::from_value(raw.detail.clone()).map_err(|_| {
                EventError::MissingStatus {
                    event_id: id.clone(),
                }
            })?;
            let status =
                detail
                    .state
                    .and_then(|s| s.status)
                    .ok_or_else(|| EventError::MissingStatus {
                        event_id: id.clone(),
                    })?;
            let previous_status = detail.previous_state.and_then(|s| s.status);
            ImageEvent::StateChange {
                image_arn,
                status,
                previous_status,
            }
        }
        CVE_DETECTED => {
            // The image ARN comes first; the pipeline ARN may follow it.
            let image_arn = raw
                .resources
                .as_ref()
                .and_then(|r| r.iter().find(|a| a.contains(":image/")))
                .cloned()
                .ok_or_else(|| EventError::MissingImageArn {
                    event_id: id.clone(),
                })?;
            ImageEvent::ScanCompleted { image_arn }
        }
        other => ImageEvent::Other {
            detail_type: other.to_string(),
        },
    };

    Ok(Envelope {
        id,
        account: raw.account,
        region: raw.region,
        event,
    })
}

fn describe_payload(payload: &Value, err: &serde_json::Error) -> String {
    let kind = match payload {
        Value::Object(map) => {
            let keys: Vec<&str> = map.keys().map(String::as_str).take(8).collect();
            format!("an object with keys [{}]", keys.join(", "))
        }
        Value::Array(_) => "an array".to_string(),
        Value::String(_) => "a string".to_string(),
        Value::Number(_) => "a number".to_string(),
        Value::Bool(_) => "a boolean".to_string(),
        Value::Null => "null".to_string(),
    };
    format!("{kind} ({err})")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn state_change(status: &str) -> Value {
        json!({
            "version": "0", "id": "e-1", "detail-type": STATE_CHANGE,
            "source": "aws.imagebuilder", "account": "123456789012",
            "time": "2026-12-04T03:40:00Z", "region": "us-east-1",
            "resources": ["arn:aws:imagebuilder:us-east-1:123456789012:image/vscode-host/1.0.0/7"],
            "detail": {"previous-state": {"status": "TESTING"}, "state": {"status": status}}
        })
    }

    #[test]
    fn reads_the_image_arn_from_the_first_resource() {
        let env = parse_image_event(&state_change("AVAILABLE")).unwrap();
        assert_eq!(
            env.event,
            ImageEvent::StateChange {
                image_arn: "arn:aws:imagebuilder:us-east-1:123456789012:image/vscode-host/1.0.0/7"
                    .into(),
                status: "AVAILABLE".into(),
                previous_status: Some("TESTING".into()),
            }
        );
    }

    #[test]
    fn a_body_that_is_not_an_envelope_names_the_expected_shape() {
        let err = parse_image_event(&json!({"owner": "alice"})).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("EventBridge event envelope"), "{text}");
        assert!(text.contains("detail-type"), "{text}");
        assert!(text.contains("[owner]"), "{text}");
    }

    #[test]
    fn an_event_from_another_source_is_refused() {
        let mut ev = state_change("AVAILABLE");
        ev["source"] = json!("aws.ec2");
        assert_eq!(
            parse_image_event(&ev).unwrap_err(),
            EventError::WrongSource("aws.ec2".into())
        );
    }

    #[test]
    fn a_state_change_without_resources_is_refused() {
        let mut ev = state_change("AVAILABLE");
        ev["resources"] = json!([]);
        assert!(matches!(
            parse_image_event(&ev),
            Err(EventError::MissingImageArn { .. })
        ));
    }

    #[test]
    fn the_cve_event_finds_the_image_among_its_resources() {
        let ev = json!({
            "id": "e-2", "detail-type": CVE_DETECTED, "source": "aws.imagebuilder",
            "resources": [
                "arn:aws:imagebuilder:us-east-1:123456789012:image/vscode-host/1.0.0/7",
                "arn:aws:imagebuilder:us-east-1:123456789012:image-pipeline/vscode-host"
            ],
            "detail": {"resource-id": "i-0abc", "finding-severity-counts": {"all": 0}}
        });
        let env = parse_image_event(&ev).unwrap();
        assert_eq!(env.event.image_arn().unwrap().rsplit('/').next(), Some("7"));
    }

    #[test]
    fn unknown_detail_types_are_kept_for_the_caller_to_ignore() {
        let mut ev = state_change("AVAILABLE");
        ev["detail-type"] = json!("EC2 Image Builder Workflow Step Waiting");
        let env = parse_image_event(&ev).unwrap();
        assert!(matches!(env.event, ImageEvent::Other { .. }));
    }
}
