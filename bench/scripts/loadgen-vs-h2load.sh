#!/usr/bin/env bash
# loadgen vs h2load against the same grpc-demo-server on loopback.
#
# Same connections (-c / --channels) and concurrency (-c*-m / --concurrency),
# server pinned to CPU0 and client to CPU1, pairs run back to back and
# repeated (differences under ~15% are noise on shared machines, see
# /work/shared/BENCHMARKING.md). Writes reports/perf/loadgen-vs-h2load.md
# and its machine-readable twin, the same path ending in .json (medians per
# configuration and every run; `make bench` reads it).
#
# CPU per RPC (user + sys): loadgen's own getrusage over its measured phase
# (its report's `usage`); h2load's from getrusage of the finished child
# (RUSAGE_CHILDREN, whole process: warmup and connect included), divided by
# its RPS times warmup + duration.
#
# Knobs (environment): REPS (3), DURATION seconds (5), WARMUP seconds (1),
# CONFIGS ("1x1 4x16 16x8"), OUT (reports/perf/loadgen-vs-h2load.md).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
REPS="${REPS:-3}"
DURATION="${DURATION:-5}"
WARMUP="${WARMUP:-1}"
CONFIGS="${CONFIGS:-1x1 4x16 16x8}"
OUT="${OUT:-reports/perf/loadgen-vs-h2load.md}"
METHOD="/ipvslab.demo.v1.Demo/WhoAmI"

for tool in h2load python3 cargo; do
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

# Pin only when there are two CPUs to pin to.
if [[ "$(nproc)" -ge 2 ]] && command -v taskset >/dev/null; then
    PIN_SERVER=(taskset -c 0); PIN_CLIENT=(taskset -c 1); PINNING="server CPU0, client CPU1"
else
    PIN_SERVER=(); PIN_CLIENT=(); PINNING="none (fewer than 2 CPUs)"
fi

# The h2load body comes from the proto, through loadgen's own encoder.
"$LOADGEN" --print-request-frame --payload-size 16 > "$WORK/req.bin"

"${PIN_SERVER[@]}" "$SERVER" --name bench --listen 127.0.0.1:0 --threads 1 > "$WORK/server.out" &
SERVER_PID=$!
for _ in $(seq 1 100); do
    grep -q '^listening on ' "$WORK/server.out" 2>/dev/null && break
    sleep 0.1
done
ADDR="$(sed -n 's/^listening on //p' "$WORK/server.out")"
[[ -n "$ADDR" ]] || { echo "grpc-demo-server did not start" >&2; exit 1; }

LOAD_BEFORE="$(uptime)"
RESULTS="$WORK/results.tsv"
: > "$RESULTS"
for cfg in $CONFIGS; do
    C="${cfg%x*}"; M="${cfg#*x}"; CONC=$((C * M))
    for rep in $(seq 1 "$REPS"); do
        echo "== ${C}x${M} rep $rep: h2load" >&2
        # h2load appends to --log-file: start each run with an empty one.
        rm -f "$WORK/h2.tsv"
        # Run under python to read the child's CPU time (getrusage of
        # RUSAGE_CHILDREN before and after), written to h2.cpu as seconds.
        "${PIN_CLIENT[@]}" python3 -c '
import resource, subprocess, sys
before = resource.getrusage(resource.RUSAGE_CHILDREN)
with open(sys.argv[2], "w") as out:
    rc = subprocess.call(sys.argv[3:], stdout=out, stderr=subprocess.STDOUT)
after = resource.getrusage(resource.RUSAGE_CHILDREN)
open(sys.argv[1], "w").write(f"{after.ru_utime - before.ru_utime} {after.ru_stime - before.ru_stime}\n")
sys.exit(rc)' "$WORK/h2.cpu" "$WORK/h2.out" \
            h2load -c "$C" -m "$M" -t 1 -D "$DURATION" --warm-up-time "$WARMUP" \
            -H 'content-type: application/grpc' -H 'te: trailers' \
            -d "$WORK/req.bin" --log-file="$WORK/h2.tsv" "http://$ADDR$METHOD" \
            || { cat "$WORK/h2.out" >&2; exit 1; }
        python3 - "$WORK/h2.out" "$WORK/h2.tsv" "$cfg" "$rep" "$WORK/h2.cpu" "$DURATION" "$WARMUP" >> "$RESULTS" <<'PY'
import re, sys
out = open(sys.argv[1]).read()
rps = float(re.search(r"finished in [^,]+, ([0-9.]+) req/s", out).group(1))
lat = sorted(int(l.split()[2]) for l in open(sys.argv[2]) if l.strip())
pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] if lat else 0
user, sys_ = map(float, open(sys.argv[5]).read().split())
rpcs = rps * (float(sys.argv[6]) + float(sys.argv[7]))
cpu = (user + sys_) * 1e6 / rpcs if rpcs > 0 else 0
print(f"h2load\t{sys.argv[3]}\t{sys.argv[4]}\t{rps:.0f}\t{pct(0.5)}\t{pct(0.99)}\t{cpu:.2f}")
PY
        echo "== ${C}x${M} rep $rep: loadgen" >&2
        "${PIN_CLIENT[@]}" "$LOADGEN" --target "$ADDR" --channels "$C" --concurrency "$CONC" \
            --duration "${DURATION}s" --warmup "${WARMUP}s" --threads 1 --progress none \
            --json "$WORK/lg.json" 2> "$WORK/lg.err" || { cat "$WORK/lg.err" >&2; exit 1; }
        python3 - "$WORK/lg.json" "$cfg" "$rep" >> "$RESULTS" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["errors"] == 0, r["status_codes"]
l = r["latency_us"]
u = r.get("usage") or {}
cpu = (u.get("user_s", 0) + u.get("sys_s", 0)) * 1e6 / r["total_rpcs"] if r["total_rpcs"] else 0
print(f"loadgen\t{sys.argv[2]}\t{sys.argv[3]}\t{r['rps']:.0f}\t{l['p50']}\t{l['p99']}\t{cpu:.2f}")
PY
    done
done

LOAD_AFTER="$(uptime)"
mkdir -p "$(dirname "$OUT")"
python3 - "$RESULTS" "$OUT" "$PINNING" "$REPS" "$DURATION" "$WARMUP" "$LOAD_BEFORE" "$LOAD_AFTER" <<'PY'
import json, platform, statistics, subprocess, sys, datetime
results, out, pinning, reps, duration, warmup, load_before, load_after = sys.argv[1:9]
rows = [l.rstrip("\n").split("\t") for l in open(results) if l.strip()]
def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()
    except Exception:
        return "?"
cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip()
commit = sh("git rev-parse --short HEAD") + (" (dirty)" if sh("git status --porcelain -- grpc-demo bench") else "")
configs = list(dict.fromkeys(r[1] for r in rows))
med = lambda xs: statistics.median(xs)
lines = []
w = lines.append
w("# loadgen vs h2load (loopback, same grpc-demo-server)")
w("")
w(f"Generated by `bench/scripts/loadgen-vs-h2load.sh` on {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}.")
w("")
w(f"- commit: `{commit}`; kernel {platform.release()}; {sh('nproc')} CPUs: {cpu}")
w(f"- h2load: {sh('h2load --version | head -1')}; pinning: {pinning}")
w(f"- server: `grpc-demo-server --threads 1` (current_thread); loadgen `--threads 1`; h2load `-t 1`")
w(f"- each run: {warmup}s warmup + {duration}s measured, request = 16-byte payload frame from `loadgen --print-request-frame`; {reps} repetitions per configuration, pairs back to back")
w("- latency: h2load from its `--log-file` (from HEADERS sent; emptied before each run); loadgen from the call (closed loop)")
w(f"- machine load (`uptime`): before `{load_before.strip()}`; after `{load_after.strip()}`")
w("")
w("## Summary (medians)")
w("")
w("| conns × streams | h2load RPS | loadgen RPS | loadgen / h2load | h2load p50 µs | loadgen p50 µs | h2load p99 µs | loadgen p99 µs | h2load CPU µs/RPC | loadgen CPU µs/RPC |")
w("|---|---|---|---|---|---|---|---|---|---|")
def medians(rs):
    return {
        "rps": med([float(r[3]) for r in rs]),
        "p50_us": med([int(r[4]) for r in rs]),
        "p99_us": med([int(r[5]) for r in rs]),
        "cpu_us_per_rpc": med([float(r[6]) for r in rs]),
    }
summary = []
for c in configs:
    h = medians([r for r in rows if r[0] == "h2load" and r[1] == c])
    g = medians([r for r in rows if r[0] == "loadgen" and r[1] == c])
    ratio = g["rps"] / h["rps"] if h["rps"] else 0
    summary.append({"config": c, "h2load": h, "loadgen": g, "ratio_rps": ratio})
    w(f"| {c.replace('x', ' × ')} | {h['rps']:,.0f} | {g['rps']:,.0f} | {ratio:.2f} | "
      f"{h['p50_us']:.0f} | {g['p50_us']:.0f} | {h['p99_us']:.0f} | {g['p99_us']:.0f} | "
      f"{h['cpu_us_per_rpc']:.1f} | {g['cpu_us_per_rpc']:.1f} |")
w("")
w("## All runs")
w("")
w("| tool | conns × streams | rep | RPS | p50 µs | p99 µs | CPU µs/RPC |")
w("|---|---|---|---|---|---|---|")
for r in rows:
    w(f"| {r[0]} | {r[1].replace('x', ' × ')} | {r[2]} | {int(r[3]):,} | {r[4]} | {r[5]} | {float(r[6]):.1f} |")
w("")
w("Notes: h2load counts gRPC errors as successes (they travel in trailers); loadgen")
w("runs here assert zero errors. Differences under ~15% are noise on shared machines.")
w("CPU µs/RPC is user + sys: loadgen's own getrusage over its measured phase; h2load's")
w("whole process (warmup and connect included) over RPS × (warmup + duration).")
open(out, "w").write("\n".join(lines) + "\n")
twin = (out[:-3] if out.endswith(".md") else out) + ".json"
runs = [{"tool": r[0], "config": r[1], "rep": int(r[2]), "rps": float(r[3]), "p50_us": int(r[4]),
         "p99_us": int(r[5]), "cpu_us_per_rpc": float(r[6])} for r in rows]
meta = {"commit": commit, "kernel": platform.release(), "cpu": cpu, "pinning": pinning,
        "reps": int(reps), "duration_s": float(duration), "warmup_s": float(warmup),
        "load_before": load_before.strip(), "load_after": load_after.strip()}
with open(twin, "w") as f:
    json.dump({"meta": meta, "configs": summary, "runs": runs}, f, indent=2)
    f.write("\n")
print("\n".join(lines))
PY
