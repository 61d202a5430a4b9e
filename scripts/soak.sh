#!/usr/bin/env bash
# `make soak`: the flake budget, measured (not in CI). Runs the whole scenario
# suite N times (default 20) with the release build, compares every report with
# its committed baseline exactly as the CI test does (`lab compare`, settings
# from the report's own [expect]), and writes reports/soak/soak.json and
# soak.md: per scenario, how many runs passed (expectations held AND no
# regression against the baseline), and the spread (min / median / max) of the
# distribution chi-square p against the weights and of the homogeneity p
# against the baseline. A healthy gate fails no run of a healthy setup: at
# alpha 1e-6 the statistics predict far fewer than 1 false failure in 1,000.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-20}
lab="$here/target/release/lab"
out="$here/reports/soak"
mkdir -p "$out"
# Every run's reports are kept (git-ignored) so a failure can be read.
work="$out/runs"
rm -rf "$work"
mkdir -p "$work"
cd "$here"
cargo build --release -q -p lab
mkdir -p "$out"
python=python3
[ -x "$here/.venv/bin/python" ] && python="$here/.venv/bin/python"
started=$(date +%s)
for i in $(seq 1 "$runs"); do
  echo "soak: run $i of $runs" >&2
  dir="$work/run-$i"
  # A failing scenario is data here, not the end of the soak.
  "$lab" scenario --all --quiet --reports "$dir" >"$work/run-$i.log" 2>&1 || true
  for scen in "$dir"/*/; do
    name=$(basename "$scen")
    report="$(ls -d "$scen"*/ | tail -1)report.json"
    base="$here/reports/baselines/$name.json"
    if [ -f "$report" ] && [ -f "$base" ]; then
      "$lab" compare --json "$base" "$report" >"$scen/compare.json" 2>/dev/null || true
    fi
  done
done
elapsed=$(( $(date +%s) - started ))
"$python" - "$work" "$runs" "$elapsed" "$out" <<'PY'
import json, os, statistics, sys
work, runs, elapsed, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
names = sorted(f[:-5] for f in os.listdir("scenarios") if f.endswith(".toml"))
result = {"runs": runs, "elapsed_s": elapsed, "scenarios": {}}
for name in names:
    passed, fit_p, homo_p, failures = 0, [], [], []
    for i in range(1, runs + 1):
        scen = os.path.join(work, f"run-{i}", name)
        reports = sorted(d for d in os.listdir(scen) if os.path.isdir(os.path.join(scen, d))) if os.path.isdir(scen) else []
        if not reports:
            failures.append(f"run {i}: no report")
            continue
        report = json.load(open(os.path.join(scen, reports[-1], "report.json")))
        cmp_path = os.path.join(scen, "compare.json")
        cmp = None
        if os.path.exists(cmp_path) and os.path.getsize(cmp_path) > 0:
            cmp = json.load(open(cmp_path))
        fair = report.get("fairness") or {}
        if "chi2_p" in fair and not fair.get("informational"):
            fit_p.append(fair["chi2_p"])
        for row in (cmp or {}).get("comparison", {}).get("rows", []):
            if row["metric"].startswith("homogeneity p") and row.get("current") is not None:
                homo_p.append(row["current"])
        ok = report.get("passed", False) and cmp is not None and not cmp["regressed"]
        if ok:
            passed += 1
        else:
            why = [e["name"] for e in report.get("expectations", []) if not e.get("passed")]
            if cmp is None:
                why.append("no comparison")
            elif cmp["regressed"]:
                why += [r["metric"] for r in cmp["comparison"]["rows"] if r["verdict"] == "regressed"]
            failures.append(f"run {i}: " + ", ".join(why) + f" (reports/soak/runs/run-{i}/{name}/{reports[-1]}/report.md)")
    spread = lambda xs: None if not xs else {"min": min(xs), "median": statistics.median(xs), "max": max(xs)}
    result["scenarios"][name] = {"passed": passed, "runs": runs, "pass_rate": passed / runs,
                                 "fit_p": spread(fit_p), "homogeneity_p": spread(homo_p), "failures": failures}
json.dump(result, open(os.path.join(out, "soak.json"), "w"), indent=2)
fmt = lambda s: "-" if s is None else f"{s['min']:.2g} / {s['median']:.2g} / {s['max']:.2g}"
total_fail = sum(r["runs"] - r["passed"] for r in result["scenarios"].values())
lines = [f"# Soak: the scenario suite {runs} times", "",
         f"{runs} runs of `lab scenario --all` (release build), each report compared with its baseline by `lab compare`; {elapsed} s in all.",
         f"False failures: {total_fail} of {runs * len(names)} scenario runs.", "",
         "| scenario | passed | chi-square p vs weights (min / median / max) | homogeneity p vs baseline (min / median / max) | failures |",
         "|---|---|---|---|---|"]
for name, r in result["scenarios"].items():
    lines.append(f"| {name} | {r['passed']}/{r['runs']} | {fmt(r['fit_p'])} | {fmt(r['homogeneity_p'])} | {'; '.join(r['failures']) or '-'} |")
open(os.path.join(out, "soak.md"), "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
