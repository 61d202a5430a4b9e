#!/usr/bin/env bash
# Instructions per RPC at 1 connection x 1 stream, loadgen against h2load,
# under callgrind: the deterministic figure behind the 1x1 RPS gap (wall
# time on a shared 2-core VM swings by 15%; instruction counts do not).
#
# Each client runs twice, N1 and N2 RPCs against the same grpc-demo-server
# on loopback; (Ir(N2) - Ir(N1)) / (N2 - N1) is the per-RPC cost with
# start-up and connect cancelled out. The server runs natively. Writes
# reports/perf/callgrind-1x1.md: both figures, their ratio, and loadgen's
# top functions by self cost (callgrind_annotate) for the N2 run.
#
# Knobs: N1 (2000), N2 (6000), OUT (reports/perf/callgrind-1x1.md).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
N1="${N1:-2000}"; N2="${N2:-6000}"
OUT="${OUT:-reports/perf/callgrind-1x1.md}"
METHOD="/ipvslab.demo.v1.Demo/WhoAmI"
for tool in valgrind callgrind_annotate h2load cargo python3; do
    command -v "$tool" >/dev/null || { echo "missing $tool: run scripts/install-deps.sh" >&2; exit 1; }
done
cargo build --release -q -p grpc-demo -p bench
TARGET_DIR="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
SERVER="$TARGET_DIR/release/grpc-demo-server"
LOADGEN="$TARGET_DIR/release/loadgen"
WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() {
    if [[ -n "$SERVER_PID" ]]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
"$LOADGEN" --print-request-frame --payload-size 16 > "$WORK/req.bin"
"$SERVER" --name bench --listen 127.0.0.1:0 --threads 1 > "$WORK/server.out" &
SERVER_PID=$!
for _ in $(seq 1 100); do grep -q '^listening on ' "$WORK/server.out" 2>/dev/null && break; sleep 0.1; done
ADDR="$(sed -n 's/^listening on //p' "$WORK/server.out")"
[[ -n "$ADDR" ]] || { echo "grpc-demo-server did not start" >&2; exit 1; }

# Total instructions of one callgrind run (the "summary:" line).
ir() { sed -n 's/^summary: \([0-9]*\).*/\1/p' "$1"; }
run_loadgen() {
    valgrind --tool=callgrind --callgrind-out-file="$WORK/lg.$1" -q \
        "$LOADGEN" --target "$ADDR" --channels 1 --concurrency 1 --requests "$1" \
        --duration 600s --threads 1 --progress none --json "$WORK/lg.$1.json" > /dev/null 2>&1
}
run_h2load() {
    valgrind --tool=callgrind --callgrind-out-file="$WORK/h2.$1" -q \
        h2load -n "$1" -c 1 -m 1 -t 1 -H 'content-type: application/grpc' -H 'te: trailers' \
        -d "$WORK/req.bin" "http://$ADDR$METHOD" > "$WORK/h2.$1.out" 2>&1
    grep -q "succeeded, 0 failed" "$WORK/h2.$1.out" || grep -q " 0 failed" "$WORK/h2.$1.out" \
        || { cat "$WORK/h2.$1.out" >&2; exit 1; }
}
for n in "$N1" "$N2"; do echo "== callgrind loadgen $n" >&2; run_loadgen "$n"; echo "== callgrind h2load $n" >&2; run_h2load "$n"; done
LG=$(( ($(ir "$WORK/lg.$N2") - $(ir "$WORK/lg.$N1")) / (N2 - N1) ))
H2=$(( ($(ir "$WORK/h2.$N2") - $(ir "$WORK/h2.$N1")) / (N2 - N1) ))
callgrind_annotate --threshold=80 "$WORK/lg.$N2" 2>/dev/null | sed -n '/^Ir/,$p' | head -40 > "$WORK/top.txt" || true
mkdir -p "$(dirname "$OUT")"
{
    echo "# Instructions per RPC at 1 x 1: loadgen against h2load (callgrind)"
    echo
    echo "- machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, kernel $(uname -r); commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
    echo "- $(h2load --version | head -1); loadgen release build, \`--threads 1\`; server grpc-demo-server \`--threads 1\`, native"
    echo "- per RPC = (Ir at $N2 RPCs - Ir at $N1 RPCs) / $((N2 - N1)): start-up and connect cancel out"
    echo
    echo "| client | instructions per RPC |"
    echo "|---|---|"
    echo "| h2load | $H2 |"
    echo "| loadgen | $LG |"
    echo "| loadgen / h2load | $(python3 -c "print(f'{$LG / $H2:.2f}')") |"
    echo
    echo "loadgen's top functions by self cost, $N2-RPC run (whole process, start-up included):"
    echo
    echo '```'
    cat "$WORK/top.txt"
    echo '```'
} > "$OUT"
echo "wrote $OUT: h2load $H2, loadgen $LG instructions per RPC" >&2
