#!/usr/bin/env bash
# Runs the ipvs module's kernel tests (lab/src/ipvs/kernel_tests.rs: netlink
# round trips, error mapping, namespace binding, connection-table templates,
# byte-for-byte ipvsadm comparisons) on a kernel with real IPVS: inside the
# lab's User-Mode Linux guest through the lab's own runner, or on the host when
# it has IPVS.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q -p lab --bin lab
unit=$(cargo test -q -p lab --lib --no-run --message-format=json 2>/dev/null |
  python3 -c 'import sys, json
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["lib"]:
        print(m["executable"])')
[ -x "$unit" ] || { echo "kernel-tests: cannot find the lab unit-test binary" >&2; exit 1; }
filter=(ipvs::kernel_tests --ignored --test-threads=1 --nocapture)
if [ -e /proc/net/ip_vs ] || modprobe -q ip_vs 2>/dev/null; then
  echo "kernel-tests: host kernel $(uname -r) has IPVS; running there"
  IPVSLAB_KERNEL_TESTS=1 "$unit" "${filter[@]}"
else
  echo "kernel-tests: host kernel $(uname -r) has no IPVS; running inside User-Mode Linux"
  target/debug/lab guest-run -- env IPVSLAB_KERNEL_TESTS=1 "$unit" "${filter[@]}"
  echo "kernel-tests: the host kernel reports IPVS as unavailable"
  IPVSLAB_EXPECT_NO_IPVS=1 "$unit" ipvs::kernel_tests::kernel_without_ipvs_is_not_available --exact --ignored --nocapture
fi
