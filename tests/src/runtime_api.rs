//! Runs a function binary behind the Lambda Runtime API that `cargo lambda watch` emulates,
//! and invokes it with `cargo lambda invoke`, as a developer would.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::emulator::free_port;
use crate::{venv_tool, workspace_root};

pub struct FunctionUnderApi {
    watch: Child,
    function: Child,
    pub port: u16,
    pub log: PathBuf,
}

/// The debug binary built by `cargo build --workspace`.
pub fn binary(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    let path = target.join("debug").join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace` first",
        path.display()
    );
    path
}

fn with_venv_path(cmd: &mut Command) -> &mut Command {
    let venv = workspace_root().join(".venv/bin");
    let path = std::env::var("PATH").unwrap_or_default();
    cmd.env("PATH", format!("{}:{path}", venv.display()))
}

impl FunctionUnderApi {
    /// Starts the Runtime API on a free loopback port, then the function binary polling it.
    pub fn start(name: &str, env: &[(String, String)], log_dir: &Path) -> FunctionUnderApi {
        let port = free_port();
        let watch_log =
            std::fs::File::create(log_dir.join(format!("{name}-runtime-api.log"))).unwrap();
        let mut watch = Command::new(venv_tool("cargo-lambda"));
        with_venv_path(&mut watch)
            .args([
                "lambda",
                "watch",
                "--only-lambda-apis",
                "-A",
                "127.0.0.1",
                "-P",
                &port.to_string(),
            ])
            .current_dir(workspace_root())
            .stdout(watch_log.try_clone().unwrap())
            .stderr(watch_log);
        let mut watch = watch.spawn().expect("starting cargo lambda watch");

        // It reads the workspace metadata first; `make setup` fetches every crate beforehand.
        let deadline = Instant::now() + Duration::from_secs(120);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                let _ = watch.kill();
                let _ = watch.wait();
                panic!("cargo lambda watch did not listen on 127.0.0.1:{port} within 120 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }

        let log = log_dir.join(format!("{name}.log"));
        let function = Command::new(binary(name))
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("AWS_LAMBDA_FUNCTION_NAME", "_")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("http://127.0.0.1:{port}/.rt"),
            )
            .env("RUST_LOG", "info")
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting the function binary");
        FunctionUnderApi {
            watch,
            function,
            port,
            log,
        }
    }

    /// `cargo lambda invoke --data-file <file>`: the handler's JSON output, or the error text.
    pub fn invoke_file(&self, file: &Path) -> Result<Value, String> {
        let mut cmd = Command::new(venv_tool("cargo-lambda"));
        let out = with_venv_path(&mut cmd)
            .args([
                "lambda",
                "invoke",
                "-A",
                "127.0.0.1",
                "-P",
                &self.port.to_string(),
                "--data-file",
            ])
            .arg(file)
            .current_dir(workspace_root())
            .output()
            .expect("running cargo lambda invoke");
        if out.status.success() {
            serde_json::from_slice(&out.stdout).map_err(|e| format!("output is not JSON ({e})"))
        } else {
            Err(format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    pub fn invoke_event(&self, name: &str) -> Result<Value, String> {
        self.invoke_file(&crate::events_dir().join(name))
    }

    pub fn function_pid(&self) -> u32 {
        self.function.id()
    }
}

impl Drop for FunctionUnderApi {
    fn drop(&mut self) {
        let _ = self.function.kill();
        let _ = self.function.wait();
        let _ = self.watch.kill();
        let _ = self.watch.wait();
    }
}
