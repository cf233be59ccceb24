//! Test and demo support: the local emulator (moto server), a loopback Image Builder endpoint
//! serving the responses in `events/imagebuilder/`, seeding, and functions run behind the
//! Lambda Runtime API by `cargo lambda watch`. Everything listens on 127.0.0.1 only and every
//! process started here is stopped by its id when its handle is dropped.

pub mod emulator;
pub mod imagebuilder_loopback;
pub mod launch_support;
pub mod runtime_api;
pub mod seed;
pub mod testbed;

use std::path::PathBuf;

pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "us-east-1";
pub const PIPELINE_ARN: &str =
    "arn:aws:imagebuilder:us-east-1:123456789012:image-pipeline/vscode-host";
pub const IMAGE_ARN_PREFIX: &str = "arn:aws:imagebuilder:us-east-1:123456789012:image/vscode-host/";
pub const POINTER: &str = "/vscode-host/ami/current";
pub const LEDGER_TABLE: &str = "vscode-host-ledger";
pub const TOPIC_NAME: &str = "vscode-host-notifications";
pub const QUEUE_NAME: &str = "vscode-host-notifications-inbox";

/// The AMI the pointer names before anything is promoted (build 1.0.0/6).
pub const SEEDED_AMI: &str = "ami-0c0ffee0000000006";

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

pub fn events_dir() -> PathBuf {
    workspace_root().join("events")
}

pub fn read_event(name: &str) -> serde_json::Value {
    let path = events_dir().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

/// A tool installed by `make setup` into the project's virtualenv.
pub fn venv_tool(name: &str) -> PathBuf {
    let path = workspace_root().join(".venv/bin").join(name);
    assert!(
        path.exists(),
        "{} is missing: run `make setup` first",
        path.display()
    );
    path
}

/// The AMI id Image Builder reports for build `n` of the sample images.
pub fn sample_ami(build: u32) -> String {
    format!("ami-0c0ffee00000000{build:02}")
}

pub fn sample_image_arn(build: u32) -> String {
    format!("{IMAGE_ARN_PREFIX}1.0.0/{build}")
}
