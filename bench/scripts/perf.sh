#!/usr/bin/env bash
# `make bench`: every performance figure of the lab measured side by side in
# one run, on this machine, into reports/perf/perf.md and perf.json.
#
#  1. loadgen vs h2load on loopback (bench/scripts/loadgen-vs-h2load.sh)
#     and generic vs demo mode (bench/scripts/generic-vs-demo.sh);
#  2. the UML round trip: `lab exec rr-persistence --host director -- true`;
#  3. the VIP path against direct to one real server, in UML, from the
#     client namespace, 4 channels × 64 callers, REPS pairs in one guest;
#  4. bring-up and teardown of the reference network by the lab (from the
#     scenario's report.json) and by `ip`/`ipvsadm` commands in the same
#     guest (bench/scripts/reference-network-commands.sh);
#  5. the scale scenarios scenarios/bench/scale-16x1000.toml and
#     churn-100k.toml (not in the CI suite);
#  6. criterion: loadgen's hot path and the lab's hot pure code.
#
# Knobs (environment): REPS (3), DURATION seconds (5), SKIP ("" or any of
# h2load generic criterion scale churn, space separated), OUT_DIR
# (reports/perf). Exit non-zero when a step fails or a report cannot be
# written; a scale scenario whose expectations fail is recorded, not fatal.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
REPS="${REPS:-3}"
DURATION="${DURATION:-5}"
SKIP="${SKIP:-}"
OUT_DIR="${OUT_DIR:-reports/perf}"
skip() { [[ " $SKIP " == *" $1 "* ]]; }
step() { echo "perf: $*" >&2; }

for tool in python3 cargo; do
    command -v "$tool" >/dev/null || { echo "missing $tool: run scripts/install-deps.sh" >&2; exit 1; }
done
START=$(date +%s)
cargo build --release -q -p lab -p grpc-demo -p bench
TARGET_DIR="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
LAB="$TARGET_DIR/release/lab"
mkdir -p "$OUT_DIR"
# Inside the workspace, not /tmp: the UML guest has its own /tmp, and sees
# the host's files everywhere else.
WORK="$(mktemp -d "$TARGET_DIR/perf.XXXXXX")"
chmod 700 "$WORK"
trap 'rm -rf "$WORK"' EXIT
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"

if ! skip h2load; then
    step "1/6 loadgen vs h2load (about $((REPS * 3 * 2 * (DURATION + 2))) s)"
    REPS="$REPS" DURATION="$DURATION" OUT="$OUT_DIR/loadgen-vs-h2load.md" \
        bench/scripts/loadgen-vs-h2load.sh > /dev/null
fi
if ! skip generic; then
    step "1/6 generic vs demo mode"
    REPS="$REPS" DURATION="$DURATION" OUT="$OUT_DIR/generic-vs-demo.md" \
        bench/scripts/generic-vs-demo.sh > /dev/null
fi

step "2/6 UML round trip (lab exec ... -- true), 5 times"
: > "$WORK/roundtrip.txt"
for _ in 1 2 3 4 5; do
    t0=$(date +%s%N)
    "$LAB" exec rr-persistence --host director -- true > /dev/null 2>&1
    t1=$(date +%s%N)
    echo $(( (t1 - t0) / 1000 )) >> "$WORK/roundtrip.txt"
done

step "3/6 VIP vs direct to rs1 in UML, $REPS pairs of ${DURATION} s"
cat > "$WORK/vip-direct.sh" <<SH
set -e
for rep in \$(seq 1 $REPS); do
    for path in vip direct; do
        target=192.168.122.1:8080; [ \$path = direct ] && target=172.22.35.1:8080
        "$LAB" loadgen --target \$target --channels 4 --concurrency 64 --threads 1 \
            --duration ${DURATION}s --warmup 1s --progress none \
            --json "$WORK/\$path-\$rep.json" 2> /dev/null
    done
done
SH
"$LAB" exec rr --host client1 -- sh "$WORK/vip-direct.sh" > /dev/null 2>&1

step "4/6 bring-up and teardown: lab (rr-persistence) and ip/ipvsadm commands, 3 each"
for rep in 1 2 3; do
    "$LAB" scenario rr-persistence --quiet --duration 1s --reports "$WORK/reports" \
        --json "$WORK/bringup-lab-$rep.json" > /dev/null 2>&1 || true
    "$LAB" guest-run -- bash "$ROOT/bench/scripts/reference-network-commands.sh" \
        2> /dev/null | tail -1 > "$WORK/bringup-cmd-$rep.json"
done

for s in scale-16x1000 churn-100k; do
    if skip "${s%%-*}"; then continue; fi
    step "5/6 scenario $s"
    "$LAB" scenario "scenarios/bench/$s.toml" --quiet --reports "$WORK/reports" \
        --json "$WORK/$s.json" > "$WORK/$s.out" 2>&1 || true
    [[ -s "$WORK/$s.json" ]] || { echo "perf: $s wrote no report:" >&2; tail -20 "$WORK/$s.out" >&2; exit 1; }
done

if ! skip criterion; then
    step "6/6 criterion (loadgen hot path, lab hot pure code)"
    touch "$WORK/criterion.stamp"
    # Quiet on success; on failure the tail of cargo's output says why.
    for args in "-p bench" "-p lab --bench hot_pure"; do
        # shellcheck disable=SC2086 # the arguments split on purpose
        cargo bench -q $args > "$WORK/criterion.out" 2>&1 || {
            echo "perf: cargo bench $args failed:" >&2; tail -30 "$WORK/criterion.out" >&2; exit 1; }
    done
fi

ELAPSED=$(( $(date +%s) - START ))
python3 bench/scripts/perf_report.py --work "$WORK" --out-dir "$OUT_DIR" \
    --criterion-dir "$TARGET_DIR/criterion" --elapsed-s "$ELAPSED" \
    --load-before "$LOAD_BEFORE" --reps "$REPS" --duration "$DURATION"
step "wrote $OUT_DIR/perf.md and $OUT_DIR/perf.json in ${ELAPSED} s"
