//! Test support for launch-host: a moto server on a free loopback port, the seeding a launch
//! needs (an AMI this account owns behind the pointer, a host security group and instance
//! profile, the topic with an inbox queue, the readiness queue), and a Runtime API runner for
//! the built `launch-host` binary.
//!
//! Tools come from the workspace's `.venv` unless `MOTO_SERVER` or `CARGO_LAMBDA` name them.
//! Everything listens on 127.0.0.1 and every process started here is stopped by its own handle.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const REGION: &str = "us-east-1";
/// moto's default account: AMIs created through it are owned by this id.
pub const ACCOUNT: &str = "123456789012";
pub const POINTER: &str = "/vscode-host/ami/current";
pub const PROFILE: &str = "vscode-host-profile";
/// An Amazon Linux 2023 x86_64 AMI bundled with moto, owned by Amazon (not by this account).
pub const AMAZON_AMI: &str = "ami-03c3da4cfa8e8943a";

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests sit in the workspace")
        .to_path_buf()
}

fn tool(env_name: &str, relative: &str) -> PathBuf {
    let path = std::env::var_os(env_name)
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join(relative));
    assert!(
        path.is_file(),
        "{} not found; set {env_name} or run `make setup`",
        path.display()
    );
    path
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind a loopback port")
        .local_addr()
        .unwrap()
        .port()
}

/// A process that is killed (by its own handle) when the value is dropped.
pub struct Running {
    pub child: Child,
    pub name: &'static str,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn wait_for_port(port: u16, what: &str, limit: Duration) {
    let started = tokio::time::Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            started.elapsed() < limit,
            "{what} did not open 127.0.0.1:{port} within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A moto server of its own on a free loopback port.
pub struct Moto {
    _process: Running,
    pub port: u16,
}

impl Moto {
    pub async fn start() -> Moto {
        let port = free_port();
        let child = Command::new(tool("MOTO_SERVER", ".venv/bin/moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let moto = Moto {
            _process: Running {
                child,
                name: "moto_server",
            },
            port,
        };
        wait_for_port(port, "moto_server", Duration::from_secs(20)).await;
        moto
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Static dummy credentials, one attempt per call (moto answers 500 for what it lacks).
    pub async fn sdk_config(&self) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(self.endpoint())
            .credentials_provider(aws_sdk_ec2::config::Credentials::new(
                "test", "test", None, None, "static",
            ))
            .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(1))
            .load()
            .await
    }

    /// One signed-looking Query request; moto routes by the credential scope's service.
    pub async fn query(&self, service: &str, body: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .expect("connect to moto");
        let request = format!(
            "POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
             Content-Type: application/x-www-form-urlencoded; charset=utf-8\r\n\
             Authorization: AWS4-HMAC-SHA256 Credential=test/20260101/{REGION}/{service}/aws4_request, \
             SignedHeaders=host, Signature=0\r\n\
             Content-Length: {len}\r\nConnection: close\r\n\r\n{body}",
            port = self.port,
            len = body.len(),
        );
        stream
            .write_all(request.as_bytes())
            .await
            .expect("send the query");
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .await
            .expect("read the answer");
        assert!(
            response.starts_with("HTTP/1.1 200") || response.starts_with("HTTP/1.0 200"),
            "{response}"
        );
        response
    }

    /// The host instance profile (and its role): RunInstances needs it to exist in moto's IAM.
    pub async fn create_instance_profile(&self, name: &str) {
        let v = "Version=2010-05-08";
        let trust = "%7B%22Version%22%3A%222012-10-17%22%7D";
        self.query(
            "iam",
            &format!("Action=CreateRole&RoleName={name}&AssumeRolePolicyDocument={trust}&{v}"),
        )
        .await;
        self.query(
            "iam",
            &format!("Action=CreateInstanceProfile&InstanceProfileName={name}&{v}"),
        )
        .await;
        self.query(
            "iam",
            &format!(
                "Action=AddRoleToInstanceProfile&InstanceProfileName={name}&RoleName={name}&{v}"
            ),
        )
        .await;
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

    let topic_arn = sns
        .create_topic()
        .name("vscode-host")
        .send()
        .await
        .unwrap()
        .topic_arn()
        .unwrap()
        .to_string();
    let readiness_queue_url = sqs
        .create_queue()
        .queue_name("host-readiness")
        .send()
        .await
        .unwrap()
        .queue_url()
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

/// Messages waiting in a queue, bodies parsed as JSON (SNS envelopes for the inbox).
pub async fn drain(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> Vec<Value> {
    let mut bodies = Vec::new();
    loop {
        let out = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        if out.messages().is_empty() {
            return bodies;
        }
        for m in out.messages() {
            bodies.push(serde_json::from_str(m.body().unwrap_or("null")).unwrap_or(Value::Null));
            sqs.delete_message()
                .queue_url(queue_url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
}

/// The launch-host binary running against the Runtime API of `cargo lambda watch`.
pub struct LambdaRunner {
    // Field order is drop order: the function stops before the API it polls.
    _function: Running,
    _watch: Running,
    port: u16,
    cargo_lambda: PathBuf,
}

impl LambdaRunner {
    /// Builds the binary (features unified with this crate's, so nothing recompiles), starts
    /// the Runtime API, then the function with `env`.
    pub async fn start(env: &[(String, String)], moto: &Moto) -> LambdaRunner {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let build = Command::new(cargo)
            .current_dir(workspace())
            .args(["build", "-p", "launch-host", "-p", "integration-tests"])
            .output()
            .expect("run cargo build");
        assert_success("cargo build -p launch-host", &build);
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace().join("target"));
        let binary = target.join("debug/launch-host");

        let cargo_lambda = tool("CARGO_LAMBDA", ".venv/bin/cargo-lambda");
        let port = free_port();
        let watch = Command::new(&cargo_lambda)
            .current_dir(workspace())
            .args([
                "lambda",
                "watch",
                "--only-lambda-apis",
                "-A",
                "127.0.0.1",
                "-P",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start cargo lambda watch");
        let watch = Running {
            child: watch,
            name: "cargo lambda watch",
        };
        wait_for_port(port, "cargo lambda watch", Duration::from_secs(60)).await;

        let function = Command::new(binary)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("http://127.0.0.1:{port}/.rt"),
            )
            .env("AWS_LAMBDA_FUNCTION_NAME", "_")
            .env("AWS_ENDPOINT_URL", moto.endpoint())
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_MAX_ATTEMPTS", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the launch-host binary");
        LambdaRunner {
            _function: Running {
                child: function,
                name: "launch-host",
            },
            _watch: watch,
            port,
            cargo_lambda,
        }
    }

    /// `cargo lambda invoke --data-file events/<file>`; the output of the invoke command.
    pub fn invoke(&self, event_file: &str) -> Output {
        Command::new(&self.cargo_lambda)
            .current_dir(workspace())
            .args([
                "lambda",
                "invoke",
                "-A",
                "127.0.0.1",
                "-P",
                &self.port.to_string(),
                "--data-file",
            ])
            .arg(workspace().join("events").join(event_file))
            .output()
            .expect("run cargo lambda invoke")
    }
}

pub fn assert_success(what: &str, output: &Output) {
    assert!(
        output.status.success(),
        "{what} failed with {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
}
