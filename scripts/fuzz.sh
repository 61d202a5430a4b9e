#!/usr/bin/env bash
# `make fuzz`: runs every cargo-fuzz target in fuzz/ for SECONDS each (default 600),
# on stable Rust through RUSTC_BOOTSTRAP=1, and prints executions and crashes per
# target. Not part of CI. Seeds: fuzz/seeds/<target>/ plus every scenario file;
# the growing corpus is kept in fuzz/corpus/ (ignored by git). A crash leaves its
# input in fuzz/artifacts/<target>/: turn it into a regression test.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-600}
cd "$here/fuzz"
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz (cargo install cargo-fuzz --locked)" >&2
  cargo install -q cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1
targets=(scenario_toml keepalived_conf ip_vs_conn ipvs_netlink)
summary=()
status=0
for t in "${targets[@]}"; do
  corpus="corpus/$t"
  mkdir -p "$corpus" "artifacts/$t"
  cp -n seeds/"$t"/* "$corpus"/ 2>/dev/null || true
  [ "$t" = scenario_toml ] && cp -n "$here"/scenarios/*.toml "$corpus"/
  echo "fuzz: $t for ${seconds} s" >&2
  log="artifacts/$t/last-run.log"
  if cargo fuzz run -s none "$t" "$corpus" -- -max_total_time="$seconds" \
      -artifact_prefix="artifacts/$t/" -print_final_stats=1 >"$log" 2>&1; then
    outcome="0 crashes"
  else
    outcome="CRASH (input in fuzz/artifacts/$t/, log $log)"
    status=1
  fi
  execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1)
  summary+=("$t: ${execs:-?} executions in ${seconds} s, $outcome")
done
printf 'fuzz: %s\n' "${summary[@]}"
exit "$status"
