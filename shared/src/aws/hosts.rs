//! Hosts on EC2 and SSM: the AMI and instance type a launch needs, RunInstances with the
//! plan's settings, host lookup by tags, the SSM readiness probe, and the delayed queue
//! message that hands a readiness check to a later invocation.

use aws_sdk_ec2::types::{
    BlockDeviceMapping, EbsBlockDevice, Filter, HttpTokensState, IamInstanceProfileSpecification,
    InstanceMetadataEndpointState, InstanceMetadataOptionsRequest,
    InstanceNetworkInterfaceSpecification, InstanceType, ResourceType, ShutdownBehavior, Tag,
    TagSpecification, VolumeType,
};
use aws_sdk_ssm::types::{CommandInvocationStatus, InstanceInformationStringFilter};

use super::AwsError;
use crate::host::{
    probe_script, tags, HostFacts, InstanceTypeFacts, LaunchPlan, ProbeResult, ReadinessCheck,
};

const LIVE_STATES: [&str; 4] = ["pending", "running", "stopping", "stopped"];

/// DescribeInstanceTypes for one type; `None` when EC2 does not offer it in this region.
pub async fn describe_instance_type(
    client: &aws_sdk_ec2::Client,
    instance_type: &str,
) -> Result<Option<InstanceTypeFacts>, AwsError> {
    let result = client
        .describe_instance_types()
        .instance_types(InstanceType::from(instance_type))
        .send()
        .await;
    let out = match result {
        Ok(out) => out,
        Err(e) => {
            let err = AwsError::new("DescribeInstanceTypes", instance_type, e);
            if err.code.as_deref() == Some("InvalidInstanceType") {
                return Ok(None);
            }
            return Err(err);
        }
    };
    Ok(out.instance_types().first().map(|t| InstanceTypeFacts {
        name: instance_type.to_string(),
        architectures: t
            .processor_info()
            .map(|p| {
                p.supported_architectures()
                    .iter()
                    .map(|a| a.as_str().to_string())
                    .collect()
            })
            .unwrap_or_default(),
    }))
}

fn filter(name: &str, values: &[&str]) -> Filter {
    Filter::builder()
        .name(name)
        .set_values(Some(values.iter().map(|v| v.to_string()).collect()))
        .build()
}

async fn describe_hosts(
    client: &aws_sdk_ec2::Client,
    filters: Vec<Filter>,
    instance_ids: Vec<String>,
    resource: &str,
) -> Result<Vec<HostFacts>, AwsError> {
    let mut hosts = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let result = client
            .describe_instances()
            .set_filters(Some(filters.clone()))
            .set_instance_ids((!instance_ids.is_empty()).then(|| instance_ids.clone()))
            .set_next_token(token.take())
            .send()
            .await;
        let page = match result {
            Ok(page) => page,
            Err(e) => {
                let err = AwsError::new("DescribeInstances", resource, e);
                if err.code.as_deref() == Some("InvalidInstanceID.NotFound") {
                    return Ok(hosts);
                }
                return Err(err);
            }
        };
        for instance in page.reservations().iter().flat_map(|r| r.instances()) {
            let tag = |key: &str| {
                instance
                    .tags()
                    .iter()
                    .find(|t| t.key() == Some(key))
                    .and_then(|t| t.value())
                    .map(str::to_string)
            };
            hosts.push(HostFacts {
                instance_id: instance.instance_id().unwrap_or_default().to_string(),
                state: instance
                    .state()
                    .and_then(|s| s.name())
                    .map(|n| n.as_str().to_string())
                    .unwrap_or_default(),
                owner: tag(tags::OWNER),
                team: tag(tags::TEAM),
                source_ami: tag(tags::SOURCE_AMI),
                superseded_by: tag(tags::SUPERSEDED_BY),
                expires_at: tag(tags::EXPIRES_AT),
                launch_token: tag(tags::LAUNCH_TOKEN),
                readiness: tag(tags::READINESS),
            });
        }
        match page.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => break,
        }
    }
    Ok(hosts)
}

/// Every live host this project manages.
pub async fn managed_hosts(client: &aws_sdk_ec2::Client) -> Result<Vec<HostFacts>, AwsError> {
    let filters = vec![
        filter(&format!("tag:{}", tags::MANAGED_BY), &[tags::MANAGER]),
        filter("instance-state-name", &LIVE_STATES),
    ];
    describe_hosts(client, filters, vec![], tags::MANAGER).await
}

/// The live host launched with `token`, if an earlier attempt already launched it.
pub async fn host_by_token(
    client: &aws_sdk_ec2::Client,
    token: &str,
) -> Result<Option<HostFacts>, AwsError> {
    let filters = vec![
        filter(&format!("tag:{}", tags::LAUNCH_TOKEN), &[token]),
        filter("instance-state-name", &LIVE_STATES),
    ];
    Ok(describe_hosts(client, filters, vec![], token)
        .await?
        .into_iter()
        .next())
}

/// One host in any state; `None` when EC2 no longer knows it.
pub async fn describe_host(
    client: &aws_sdk_ec2::Client,
    instance_id: &str,
) -> Result<Option<HostFacts>, AwsError> {
    let hosts = describe_hosts(client, vec![], vec![instance_id.to_string()], instance_id).await?;
    Ok(hosts.into_iter().find(|h| h.instance_id == instance_id))
}

/// RunInstances exactly as planned; returns the instance id.
pub async fn run_instance(
    client: &aws_sdk_ec2::Client,
    plan: &LaunchPlan,
) -> Result<String, AwsError> {
    let tags: Vec<Tag> = plan
        .tags
        .iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect();
    let tagged = |resource: ResourceType| {
        TagSpecification::builder()
            .resource_type(resource)
            .set_tags(Some(tags.clone()))
            .build()
    };
    let resource = format!("{} for {}/{}", plan.ami_id, plan.spec.owner, plan.spec.team);
    let out = client
        .run_instances()
        .image_id(&plan.ami_id)
        .instance_type(InstanceType::from(plan.spec.instance_type.as_str()))
        .min_count(1)
        .max_count(1)
        .client_token(&plan.client_token)
        .network_interfaces(
            InstanceNetworkInterfaceSpecification::builder()
                .device_index(0)
                .subnet_id(&plan.subnet_id)
                .groups(&plan.security_group_id)
                .associate_public_ip_address(false)
                .delete_on_termination(true)
                .build(),
        )
        .metadata_options(
            InstanceMetadataOptionsRequest::builder()
                .http_endpoint(InstanceMetadataEndpointState::Enabled)
                .http_tokens(HttpTokensState::Required)
                .http_put_response_hop_limit(plan.metadata_hop_limit)
                .build(),
        )
        .block_device_mappings(
            BlockDeviceMapping::builder()
                .device_name(&plan.root_device_name)
                .ebs(
                    EbsBlockDevice::builder()
                        .encrypted(true)
                        .volume_type(VolumeType::Gp3)
                        .volume_size(plan.root_volume_gib)
                        .delete_on_termination(true)
                        .build(),
                )
                .build(),
        )
        .iam_instance_profile(
            IamInstanceProfileSpecification::builder()
                .name(&plan.instance_profile)
                .build(),
        )
        .instance_initiated_shutdown_behavior(ShutdownBehavior::Terminate)
        .tag_specifications(tagged(ResourceType::Instance))
        .tag_specifications(tagged(ResourceType::Volume))
        .tag_specifications(tagged(ResourceType::NetworkInterface))
        .send()
        .await
        .map_err(|e| AwsError::new("RunInstances", resource.clone(), e))?;
    out.instances()
        .first()
        .and_then(|i| i.instance_id())
        .map(str::to_string)
        .ok_or_else(|| AwsError::plain("RunInstances", resource, "the response lists no instance"))
}

pub async fn tag_hosts(
    client: &aws_sdk_ec2::Client,
    instance_ids: &[String],
    tags: &[(String, String)],
) -> Result<(), AwsError> {
    super::ec2::tag_resources(client, instance_ids, tags).await
}

pub async fn terminate_host(
    client: &aws_sdk_ec2::Client,
    instance_id: &str,
) -> Result<(), AwsError> {
    client
        .terminate_instances()
        .instance_ids(instance_id)
        .send()
        .await
        .map_err(|e| AwsError::new("TerminateInstances", instance_id, e))?;
    Ok(())
}

/// SSM's `PingStatus` for the instance; `None` while it is not a managed node.
pub async fn managed_ping(
    client: &aws_sdk_ssm::Client,
    instance_id: &str,
) -> Result<Option<String>, AwsError> {
    let filter = InstanceInformationStringFilter::builder()
        .key("InstanceIds")
        .values(instance_id)
        .build()
        .map_err(|e| AwsError::plain("DescribeInstanceInformation", instance_id, e.to_string()))?;
    let out = client
        .describe_instance_information()
        .filters(filter)
        .send()
        .await
        .map_err(|e| AwsError::new("DescribeInstanceInformation", instance_id, e))?;
    Ok(out
        .instance_information_list()
        .iter()
        .find(|i| i.instance_id() == Some(instance_id))
        .and_then(|i| i.ping_status())
        .map(|p| p.as_str().to_string()))
}

/// Asks the host, through `AWS-RunShellScript`, whether code-server answers on loopback.
pub async fn send_probe(
    client: &aws_sdk_ssm::Client,
    instance_id: &str,
) -> Result<String, AwsError> {
    let out = client
        .send_command()
        .document_name("AWS-RunShellScript")
        .instance_ids(instance_id)
        .comment("vscode-host readiness: does code-server answer on 127.0.0.1?")
        .timeout_seconds(60)
        .parameters("commands", probe_script())
        .send()
        .await
        .map_err(|e| AwsError::new("SendCommand", instance_id, e))?;
    out.command()
        .and_then(|c| c.command_id())
        .map(str::to_string)
        .ok_or_else(|| {
            AwsError::plain("SendCommand", instance_id, "the response has no command id")
        })
}

/// Where the probe command stands on the host.
pub async fn probe_result(
    client: &aws_sdk_ssm::Client,
    command_id: &str,
    instance_id: &str,
) -> Result<ProbeResult, AwsError> {
    let out = match client
        .get_command_invocation()
        .command_id(command_id)
        .instance_id(instance_id)
        .send()
        .await
    {
        Ok(out) => out,
        // SSM needs a moment after SendCommand before the invocation can be read.
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_invocation_does_not_exist()) =>
        {
            return Ok(ProbeResult::Pending)
        }
        Err(e) => {
            return Err(AwsError::new(
                "GetCommandInvocation",
                format!("{command_id} on {instance_id}"),
                e,
            ))
        }
    };
    Ok(match out.status() {
        Some(CommandInvocationStatus::Success) => ProbeResult::Passed,
        Some(
            CommandInvocationStatus::Pending
            | CommandInvocationStatus::InProgress
            | CommandInvocationStatus::Delayed,
        ) => ProbeResult::Pending,
        other => {
            let status = other
                .map(|s| s.as_str().to_string())
                .unwrap_or_else(|| "no status".into());
            let stderr = out.standard_error_content().unwrap_or_default().trim();
            ProbeResult::Failed {
                detail: format!(
                    "{status}, exit code {}{}",
                    out.response_code(),
                    if stderr.is_empty() {
                        String::new()
                    } else {
                        format!(": {stderr}")
                    }
                ),
            }
        }
    })
}

/// Hands a readiness check to a later invocation through the delay queue.
pub async fn send_readiness_check(
    client: &aws_sdk_sqs::Client,
    queue_url: &str,
    check: &ReadinessCheck,
    delay_seconds: i32,
) -> Result<String, AwsError> {
    let body = serde_json::to_string(check)
        .map_err(|e| AwsError::plain("SendMessage", queue_url, e.to_string()))?;
    let out = client
        .send_message()
        .queue_url(queue_url)
        .message_body(body)
        .delay_seconds(delay_seconds.clamp(0, 900))
        .send()
        .await
        .map_err(|e| AwsError::new("SendMessage", queue_url, e))?;
    Ok(out.message_id().unwrap_or_default().to_string())
}
