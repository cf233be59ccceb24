#!/usr/bin/env bash
# The numbers a user of Rust Lambdas comes for, measured the same way every time: package
# size, init time beside a Python + boto3 equivalent, peak memory per sample event, handler
# time excluding AWS, and the size of target/. Prints the table and writes BENCHMARKS.md.
# Run with `make bench` (after the README's set-up). Everything runs on 127.0.0.1.
#
# Knobs: BENCH_INIT_RUNS (default 30), BENCH_CI_COLD_SECONDS and BENCH_CI_NOTE (the wall time
# of a cold `.ci/run`, which this command cannot measure itself).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

export PATH="$root/.venv/bin:$PATH"
export AWS_EC2_METADATA_DISABLED=true AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
python="$root/.venv/bin/python"
init_runs="${BENCH_INIT_RUNS:-30}"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
step() { printf '\n== %s\n' "$*" >&2; }

# Every function crate under functions/, by its binary name.
mapfile -t functions < <(cargo metadata --no-deps --locked --format-version 1 | "$python" -c '
import json, os, sys
meta = json.load(sys.stdin)
root = os.path.join(meta["workspace_root"], "functions") + os.sep
for pkg in meta["packages"]:
    if pkg["manifest_path"].startswith(root):
        for t in pkg["targets"]:
            if "bin" in t["kind"]:
                print(t["name"])
' | sort)
[[ ${#functions[@]} -gt 0 ]] || { echo "bench: no function found under functions/" >&2; exit 1; }
packages=()
for f in "${functions[@]}"; do packages+=(-p "$f"); done
step "functions: ${functions[*]}"

step "release build (x86_64)"
cargo lambda build --release --locked --output-format zip --x86-64 "${packages[@]}"
lambda_dirs=(--lambda-dir "x86_64=$root/target/lambda")
if rustup target list --installed 2>/dev/null | grep -q '^aarch64-unknown-linux-gnu$'; then
  step "release build (arm64)"
  cargo lambda build --release --locked --output-format zip --arm64 \
    --lambda-dir target/lambda-arm64 "${packages[@]}"
  lambda_dirs+=(--lambda-dir "arm64=$root/target/lambda-arm64")
else
  lambda_dirs+=(--arch-note "arm64=not measured: the aarch64 Rust standard library is not installed")
fi

# The measured binary is the one inside the zip Lambda would receive.
for f in "${functions[@]}"; do
  mkdir -p "$work/$f"
  unzip -q -o "$root/target/lambda/$f/bootstrap.zip" bootstrap -d "$work/$f"
  chmod +x "$work/$f/bootstrap"
done

step "init time: ${init_runs} runs per subject against a local Runtime API"
subjects=() python_subjects=()
for f in "${functions[@]}"; do
  subjects+=(--subject "$f=$work/$f/bootstrap")
  [[ -f bench/functions/$f.env ]] && subjects+=(--env-file "$f=bench/functions/$f.env")
  # A function's own Python equivalent if it has one, else promote-image's.
  equivalent=bench/python_equivalent/$f.py
  [[ -f $equivalent ]] || equivalent=bench/python_equivalent/handler.py
  name="python-boto3-$(basename "$equivalent" .py)"
  python_subjects+=(--python-subject "$f=$name")
  if [[ " ${subjects[*]} " != *" $name="* ]]; then
    subjects+=(--subject "$name=$python $equivalent" --function-name "$name=$f")
  fi
done
load_at_init=$(cut -d' ' -f1-3 /proc/loadavg)
"$python" bench/runtime_api_probe.py --runs "$init_runs" --out "$work/init.json" "${subjects[@]}" \
  || echo "bench: a subject failed to start; the results file says which" >&2

memory=()
cargo build --locked --quiet -p integration-tests --bin bench_memory
for f in "${functions[@]}"; do
  # bench/functions/<function>.events lists that function's samples, as globs under events/.
  [[ -f bench/functions/$f.events ]] || continue
  events=()
  while read -r pattern; do
    [[ -z $pattern || $pattern == \#* ]] && continue
    for e in events/$pattern; do [[ -f $e ]] && events+=("$root/$e"); done
  done < "bench/functions/$f.events"
  step "peak memory: $f on ${#events[@]} sample events, each in a fresh process, against moto"
  target/debug/bench_memory "$work/$f/bootstrap" "$f" "$work/memory-$f.json" "${events[@]}"
  memory+=(--memory "$f=$work/memory-$f.json")
done

step "handler time excluding AWS (criterion)"
# The gate calls no SDK code, so the SDK service crates build at opt-level 0 here: a fresh
# machine saves minutes and the measured code is compiled exactly as in release.
sdk_opt=()
for c in aws-sdk-ec2 aws-sdk-imagebuilder aws-sdk-ssm aws-sdk-sns aws-sdk-dynamodb; do
  sdk_opt+=(--config "profile.bench.package.$c.opt-level=0")
done
rm -rf target/criterion/promotion_gate
cargo "${sdk_opt[@]}" bench --locked -p shared --bench promotion_gate -- \
  --warm-up-time 1 --measurement-time 3 --noplot

ci=()
if [[ -n ${BENCH_CI_COLD_SECONDS:-} ]]; then
  ci=(--ci-seconds "$BENCH_CI_COLD_SECONDS" --ci-note "${BENCH_CI_NOTE:-}")
fi

step "results"
target_bytes=$(du -sb target | cut -f1)
du -sb target/* > "$work/target-du.txt"
function_list=$(IFS=,; echo "${functions[*]}")
"$python" bench/report.py --functions "$function_list" "${lambda_dirs[@]}" \
  --init "$work/init.json" "${python_subjects[@]}" "${memory[@]}" \
  --criterion-dir target/criterion --target-bytes "$target_bytes" --target-du "$work/target-du.txt" \
  --init-runs "$init_runs" --load-at-init "$load_at_init" \
  "${ci[@]}" --out BENCHMARKS.md
echo >&2
echo "bench: wrote BENCHMARKS.md" >&2
