//! Logging setup: JSON on Lambda when the function's log format says so, plain text locally.

/// Installs the global subscriber once, before the runtime starts. The level comes from
/// `AWS_LAMBDA_LOG_LEVEL` (set by Lambda's logging config) or `RUST_LOG`, default INFO.
pub fn init() {
    lambda_runtime::tracing::init_default_subscriber();
}
