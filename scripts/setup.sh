#!/usr/bin/env bash
# Installs the project's dev tools on a new machine: a Python virtualenv with moto server,
# cargo-lambda, zig, SAM CLI and cfn-lint (.venv), checkov in its own (.venv-checkov), and
# every crate the workspace needs. Re-running it only reinstalls what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"

install_venv() {
  local dir="$1" requirements="$2"
  local stamp="$dir/.installed-$(sha256sum "$requirements" | cut -c1-16)"
  if [[ -f "$stamp" ]]; then
    return
  fi
  echo "setup: installing $requirements into $dir"
  rm -rf "$dir"
  "$PYTHON" -m venv "$dir"
  "$dir/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
  touch "$stamp"
}

install_venv .venv requirements-dev.txt
install_venv .venv-checkov requirements-checkov.txt

# cargo lambda watch reads the full workspace metadata at start; fetch every crate now so it
# never waits on cargo's package lock during the tests.
cargo fetch --locked --quiet
echo "setup: tools ready ($(.venv/bin/cargo-lambda lambda --version), $(.venv/bin/sam --version))"
