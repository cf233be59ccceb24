//! The offline static checks on the committed `template.yaml`, run as the tools themselves:
//! `sam validate --lint`, `cfn-lint`, `checkov` and a `sam build` of every function for
//! x86_64. The tools come from the workspace's `.venv` and `.venv-checkov`; a missing tool
//! fails the test with the command that installs it, instead of skipping quietly.
//!
//! None of these checks needs AWS credentials or the network. Telemetry and update checks of
//! the tools are switched off so that a test run talks to no host.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_yaml::Value;

const REGION: &str = "us-east-1";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the integration-tests crate sits inside the workspace")
        .to_path_buf()
}

fn tool(relative: &str) -> PathBuf {
    let path = workspace().join(relative);
    assert!(
        path.is_file(),
        "{relative} is missing; run `make setup` to install the template tools"
    );
    path
}

/// A SAM CLI settings directory that says the version check just ran and telemetry is off, so
/// `sam` neither looks for a newer release nor reports usage.
fn quiet_sam_settings() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sam-cli-settings");
    std::fs::create_dir_all(&dir).expect("create the SAM CLI settings directory");
    // SAM ignores the time unless it is a JSON float, hence seconds as f64.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64();
    let settings = serde_json::json!({ "telemetryEnabled": false, "lastVersionCheck": now });
    std::fs::write(dir.join("metadata.json"), settings.to_string())
        .expect("write the SAM CLI settings");
    dir
}

/// A command for a workspace tool, run from the workspace root with the tools' network
/// features off.
fn command(program: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.current_dir(workspace())
        .env("AWS_DEFAULT_REGION", REGION)
        .env("SAM_CLI_TELEMETRY", "0")
        // SAM CLI's own test hook for its settings directory; keeps the developer's untouched.
        .env("__SAM_CLI_APP_DIR", quiet_sam_settings())
        .env("CKV_SKIP_PACKAGE_UPDATE_CHECK", "true");
    cmd
}

fn run(mut cmd: Command) -> Output {
    let shown = format!("{cmd:?}");
    cmd.output()
        .unwrap_or_else(|e| panic!("could not start {shown}: {e}"))
}

fn assert_success(what: &str, output: &Output) {
    assert!(
        output.status.success(),
        "{what} failed with {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
}

#[test]
fn sam_validate_with_lint_accepts_the_template() {
    let mut cmd = command(&tool(".venv/bin/sam"));
    cmd.args([
        "validate",
        "--lint",
        "--template",
        "template.yaml",
        "--region",
        REGION,
    ]);

    assert_success("sam validate --lint", &run(cmd));
}

#[test]
fn cfn_lint_accepts_the_template() {
    let mut cmd = command(&tool(".venv/bin/cfn-lint"));
    cmd.arg("template.yaml");

    assert_success("cfn-lint", &run(cmd));
}

#[test]
fn checkov_finds_no_failed_checks() {
    let mut cmd = command(&tool(".venv-checkov/bin/checkov"));
    cmd.args([
        "-f",
        "template.yaml",
        "--framework",
        "cloudformation",
        "--skip-download",
        "--compact",
        "--quiet",
    ]);

    assert_success("checkov", &run(cmd));
}

fn serverless_functions() -> Vec<String> {
    let text = std::fs::read_to_string(workspace().join("template.yaml")).expect("read template");
    let template: Value = serde_yaml::from_str(&text).expect("template.yaml is valid YAML");
    let resources = template
        .get("Resources")
        .and_then(Value::as_mapping)
        .expect("Resources");
    resources
        .iter()
        .filter(|(_, r)| r.get("Type").and_then(Value::as_str) == Some("AWS::Serverless::Function"))
        .filter_map(|(id, _)| id.as_str().map(str::to_string))
        .collect()
}

/// The `e_machine` field of a 64-bit little-endian ELF file, or None for anything else.
fn elf_machine(path: &Path) -> Option<u16> {
    let bytes = std::fs::read(path).ok()?;
    let header = bytes.get(..20)?;
    let is_elf = header[..4] == [0x7f, b'E', b'L', b'F'];
    let is_64_bit_little_endian = header[4] == 2 && header[5] == 1;
    (is_elf && is_64_bit_little_endian).then(|| u16::from_le_bytes([header[18], header[19]]))
}

const EM_X86_64: u16 = 0x3e;

/// Builds with the real toolchain (cargo-lambda, release profile), so it takes minutes.
#[test]
fn sam_build_produces_a_bootstrap_for_every_function_on_x86_64() {
    let sam = tool(".venv/bin/sam");
    tool(".venv/bin/cargo-lambda");
    let build_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sam-build-x86_64");
    if build_dir.exists() {
        std::fs::remove_dir_all(&build_dir).expect("clear the previous sam build");
    }
    // cargo-lambda and its zig linker are found through the virtualenv.
    let venv_bin = workspace().join(".venv/bin");
    let path = std::env::var_os("PATH").unwrap_or_default();
    let path = std::env::join_paths(std::iter::once(venv_bin).chain(std::env::split_paths(&path)))
        .expect("PATH entries are valid");

    let mut cmd = command(&sam);
    cmd.env("PATH", path)
        .args(["build", "--template", "template.yaml", "--build-dir"]);
    cmd.arg(&build_dir)
        .args(["--parameter-overrides", "Architecture=x86_64"]);
    assert_success("sam build", &run(cmd));

    let functions = serverless_functions();
    assert!(
        !functions.is_empty(),
        "template.yaml declares no AWS::Serverless::Function"
    );
    for function in functions {
        let bootstrap = build_dir.join(&function).join("bootstrap");
        assert_eq!(
            elf_machine(&bootstrap),
            Some(EM_X86_64),
            "{} is not a 64-bit x86-64 ELF executable",
            bootstrap.display()
        );
    }
}
