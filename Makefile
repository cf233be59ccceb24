# One entry point per job. `make demo` and `make test` work on a new machine: both run setup.
SHELL := /bin/bash
export PATH := $(CURDIR)/.venv/bin:$(PATH)
export SAM_CLI_TELEMETRY := 0
export AWS_EC2_METADATA_DISABLED := true

.PHONY: setup build demo test lint sam-build bench clean

setup:
	scripts/setup.sh

build: setup
	cargo build --workspace --locked

## The main job: the promotion flow on the local emulator (moto + Image Builder loopback).
demo: build
	cargo run --quiet --locked -p integration-tests --bin demo

## Every test: unit, emulator, faults, Runtime API flow, template policy and checks, sam build.
test: build
	cargo test --workspace --locked

lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

## Release artifacts the way SAM builds them (x86_64 here; see README for arm64).
sam-build: setup
	sam build --template template.yaml --parameter-overrides Architecture=x86_64

bench: build
	scripts/bench.sh

clean:
	rm -rf target .aws-sam
