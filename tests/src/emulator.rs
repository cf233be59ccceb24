//! moto server on a free loopback port, with the sample AMIs loaded at start.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{venv_tool, workspace_root, REGION};

pub struct Moto {
    child: Child,
    pub port: u16,
    pub url: String,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

impl Moto {
    /// Starts moto and waits until it answers (about half a second).
    pub fn start() -> Moto {
        let port = free_port();
        let log = std::fs::File::create(std::env::temp_dir().join(format!("moto-{port}.log")))
            .expect("moto log file");
        let child = Command::new(venv_tool("moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env(
                "MOTO_AMIS_PATH",
                workspace_root().join("tests/fixtures/emulator-amis.json"),
            )
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting moto_server");
        let moto = Moto {
            child,
            port,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while http(port, "GET", "/moto-api/", "").is_err() {
            assert!(
                Instant::now() < deadline,
                "moto_server did not answer on port {port} within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }

    /// Wipes every resource; the sample AMIs come back on the next EC2 call.
    pub fn reset(&self) {
        http(self.port, "POST", "/moto-api/reset", "").expect("moto reset");
    }

    /// SDK configuration pointing every client at this moto, with fixed test credentials.
    pub async fn sdk_config(&self) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .credentials_provider(Credentials::new(
                "testing", "testing", None, None, "emulator",
            ))
            .endpoint_url(&self.url)
            // moto answers what it does not implement with HTTP 500; retry once, quickly.
            .retry_config(
                aws_smithy_types::retry::RetryConfig::standard()
                    .with_max_attempts(2)
                    .with_initial_backoff(Duration::from_millis(10)),
            )
            .load()
            .await
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn endpoint(&self) -> String {
        self.url.clone()
    }

    /// One signed-looking Query request; moto routes by the credential scope's service.
    pub async fn query(&self, service: &str, body: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .expect("connect to moto");
        let request = format!(
            "POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
             Content-Type: application/x-www-form-urlencoded; charset=utf-8\r\n\
             Authorization: AWS4-HMAC-SHA256 Credential=test/20260101/{region}/{service}/aws4_request, \
             SignedHeaders=host, Signature=0\r\n\
             Content-Length: {len}\r\nConnection: close\r\n\r\n{body}",
            port = self.port,
            region = REGION,
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

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 exchange on loopback; returns the status code.
pub fn http(port: u16, method: &str, path: &str, body: &str) -> std::io::Result<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other("no HTTP status line"))
}
