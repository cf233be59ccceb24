//! Image Builder: the facts of an image build version and the counts of its scan findings.

use aws_sdk_imagebuilder::types::{Image, ImageScanFindingsFilter};
use aws_sdk_imagebuilder::Client;

use super::AwsError;
use crate::image::{BuildVersion, FailureContext, FindingCounts, ImageFacts, OutputAmi, Severity};

/// GetImage, translated. A missing image is an error naming the ARN.
pub async fn get_image(client: &Client, arn: &str) -> Result<ImageFacts, AwsError> {
    let out = client
        .get_image()
        .image_build_version_arn(arn)
        .send()
        .await
        .map_err(|e| AwsError::new("GetImage", arn, e))?;
    let image = out
        .image()
        .ok_or_else(|| AwsError::plain("GetImage", arn, "the response holds no image"))?;
    facts_from(image, arn)
}

fn facts_from(image: &Image, requested_arn: &str) -> Result<ImageFacts, AwsError> {
    let arn = image.arn().unwrap_or(requested_arn).to_string();
    let version = BuildVersion::from_arn(&arn)
        .map_err(|e| AwsError::plain("GetImage", requested_arn, e.to_string()))?;
    let state = image.state();
    let failure = state
        .and_then(|s| s.failure_context())
        .map(|f| FailureContext {
            stage: f.image_status().map(|s| s.as_str().to_string()),
            failed_step: f.failed_step().map(str::to_string),
            workflow_execution_id: f.workflow_execution_id().map(str::to_string),
            detail: f
                .component_failure()
                .and_then(|c| c.error_message())
                .or_else(|| f.distribution_failure().and_then(|d| d.error_message()))
                .map(str::to_string),
        });
    let amis = image
        .output_resources()
        .map(|o| o.amis())
        .unwrap_or_default()
        .iter()
        .filter_map(|a| {
            Some(OutputAmi {
                region: a.region()?.to_string(),
                account_id: a.account_id().map(str::to_string),
                ami_id: a.image()?.to_string(),
                name: a.name().map(str::to_string),
            })
        })
        .collect();

    Ok(ImageFacts {
        name: image.name().unwrap_or_default().to_string(),
        version,
        status: state
            .and_then(|s| s.status())
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        reason: state.and_then(|s| s.reason()).map(str::to_string),
        failure,
        pipeline_arn: image.source_pipeline_arn().map(str::to_string),
        pipeline_name: image.source_pipeline_name().map(str::to_string),
        tests_enabled: image
            .image_tests_configuration()
            .and_then(|t| t.image_tests_enabled())
            .unwrap_or(false),
        scanning_enabled: image
            .image_scanning_configuration()
            .and_then(|s| s.image_scanning_enabled())
            .unwrap_or(false),
        scan_status: image
            .scan_state()
            .and_then(|s| s.status())
            .map(|s| s.as_str().to_string()),
        scan_reason: image
            .scan_state()
            .and_then(|s| s.reason())
            .map(str::to_string),
        amis,
        arn,
    })
}

/// Counts every scan finding of the image by severity. The API takes exactly one filter with
/// one value, so severity is counted here rather than filtered there.
pub async fn scan_finding_counts(client: &Client, arn: &str) -> Result<FindingCounts, AwsError> {
    let filter = ImageScanFindingsFilter::builder()
        .name("imageBuildVersionArn")
        .values(arn)
        .build();
    let mut counts = FindingCounts::default();
    let mut token: Option<String> = None;
    loop {
        let page = client
            .list_image_scan_findings()
            .filters(filter.clone())
            .max_results(25)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| AwsError::new("ListImageScanFindings", arn, e))?;
        for finding in page.findings() {
            counts.add(finding.severity().and_then(Severity::parse));
        }
        match page.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => return Ok(counts),
        }
    }
}
