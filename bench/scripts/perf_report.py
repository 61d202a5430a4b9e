#!/usr/bin/env python3
"""Aggregates the pieces `bench/scripts/perf.sh` measured into
reports/perf/perf.json (machine-readable) and perf.md (the report).

Reads only JSON the tools wrote: loadgen's --json, the lab's report.json,
reference-network-commands.sh's one line, loadgen-vs-h2load.json and
criterion's estimates.json. Each figure is printed beside the goal of
tracker issue 13; a figure that was not measured says so, never a guess.
"""

import argparse
import datetime
import glob
import json
import os
import platform
import statistics
import subprocess
import sys


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


def median(xs):
    return statistics.median(xs) if xs else None


def machine(reports):
    runner = next((r["runner"] for r in reports if r and r.get("runner")), {})
    build = runner.get("build") or {}
    return {
        "cpu_model": sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip(),
        "cores": os.cpu_count(),
        "host_kernel": platform.release(),
        "runner": runner.get("kind", "unknown"),
        "guest_kernel": runner.get("kernel"),
        "guest_kernel_source": runner.get("kernel_source"),
        "build_profile": build.get("profile"),
        "opt_level": build.get("opt_level"),
        "commit": sh("git rev-parse --short HEAD") + (" (dirty)" if sh("git status --porcelain -- lab bench grpc-demo") else ""),
    }


def vip_vs_direct(work, reps):
    pairs = []
    for rep in range(1, reps + 1):
        vip, direct = load(f"{work}/vip-{rep}.json"), load(f"{work}/direct-{rep}.json")
        if vip and direct:
            pairs.append({
                "rep": rep,
                "vip_rps": vip["rps"], "direct_rps": direct["rps"],
                "vip_p50_us": vip["latency_us"]["p50"], "direct_p50_us": direct["latency_us"]["p50"],
                "vip_p99_us": vip["latency_us"]["p99"], "direct_p99_us": direct["latency_us"]["p99"],
                "vip_errors": vip["errors"], "direct_errors": direct["errors"],
            })
    if not pairs:
        return None
    m = lambda k: median([p[k] for p in pairs])
    return {
        "channels": 4, "concurrency": 64, "pairs": pairs,
        "median_vip_rps": m("vip_rps"), "median_direct_rps": m("direct_rps"),
        "ratio": m("vip_rps") / m("direct_rps") if m("direct_rps") else None,
        "median_vip_p50_us": m("vip_p50_us"), "median_direct_p50_us": m("direct_p50_us"),
    }


def bringup(work):
    lab = [load(p) for p in sorted(glob.glob(f"{work}/bringup-lab-*.json"))]
    cmd = [load(p) for p in sorted(glob.glob(f"{work}/bringup-cmd-*.json"))]
    lab_up = [r["timing"]["bringup_ms"] for r in lab if r and r.get("timing")]
    lab_down = [r["timing"]["teardown_ms"] for r in lab if r and r.get("timing")]
    cmd_up = [r["bringup_ms"] for r in cmd if r]
    cmd_down = [r["teardown_ms"] for r in cmd if r]
    out = {
        "lab_bringup_ms": lab_up, "lab_teardown_ms": lab_down,
        "commands_bringup_ms": cmd_up, "commands_teardown_ms": cmd_down,
    }
    if lab_up and cmd_up:
        out["speedup_bringup"] = median(cmd_up) / median(lab_up)
    if lab_down and cmd_down:
        out["speedup_teardown"] = median(cmd_down) / median(lab_down)
    return out, [r for r in lab if r]


def peak_tables(report):
    """The lab's own peaks (report.json resources.tables, sampled once a
    second): IPVS entries, client TIME_WAIT and sockets in use, and the
    peak RSS of loadgen and lab; None in reports from before them."""
    res = report.get("resources") or {}
    t = res.get("tables")
    if not t:
        return None
    return {
        "ipvs_entries": t.get("ipvs_entries"),
        "client_time_wait": t.get("client_time_wait"),
        "client_in_use": t.get("client_in_use"),
        "client_port_range": t.get("client_port_range"),
        "loadgen_max_rss_kib": (res.get("loadgen") or {}).get("max_rss_kib"),
        "lab_max_rss_kib": res.get("lab_max_rss_kib"),
    }


def peak_ipvs_table(report):
    """Largest connection table seen in the once-a-second samples:
    connections (active + inactive) and templates."""
    best = (0, 0)
    for s in report.get("ipvs_samples", []):
        conns = sum(d.get("active", 0) + d.get("inactive", 0) for d in s.get("destinations", []))
        best = max(best, (conns, s.get("templates", 0)))
    return {"connections": best[0], "templates": best[1]}


def tables_text(s):
    """The scale row's table and memory figures."""
    t = s.get("peak_tables")
    if not t:
        p = s["peak_ipvs_table"]
        return f"peak IPVS table {num(p['connections'])} connections + {num(p['templates'])} templates"
    kib = lambda k: f"{t[k] / 1024:.1f} MiB" if t.get(k) else "n/a"
    return (f"peak IPVS table {num(t['ipvs_entries'])} entries; client TIME_WAIT {num(t.get('client_time_wait'))}, "
            f"sockets in use {num(t.get('client_in_use'))}; peak RSS loadgen {kib('loadgen_max_rss_kib')}, lab {kib('lab_max_rss_kib')}")


def scenario_figures(report):
    if not report:
        return None
    rounds = report.get("rounds", [])
    rpcs = sum(c.get("rpcs", 0) for c in report.get("clients", []))
    out = {
        "passed": report.get("passed"),
        "failed_expectations": [e.get("name", e.get("expectation", "?")) for e in report.get("expectations", []) if not e.get("passed", True)],
        "timing": report.get("timing"),
        "ok_rpcs": rpcs,
        "errors": report.get("errors", {}).get("total"),
        "errors_by_status": report.get("errors", {}).get("by_status"),
        "latency_us": report.get("latency_us"),
        "duration_s": report.get("duration_s"),
        "servers": len(report.get("servers", [])),
        "client_ips": len(report.get("clients", [])),
        "connections": sum(s.get("connections", 0) for s in report.get("servers", [])),
        "ipvs_conns": sum(s.get("ipvs_conns") or 0 for s in report.get("servers", [])),
        "peak_ipvs_table": peak_ipvs_table(report),
        "peak_tables": peak_tables(report),
        "fairness": {k: (report.get("fairness") or {}).get(k) for k in ("unit", "max_over_mean", "p_value")},
        "rounds": len(rounds),
    }
    # Sections added by later versions of the lab, kept whole when present.
    for key in ("connects", "cpu", "resources"):
        if key in report:
            out[key] = report[key]
    return out


def criterion(criterion_dir, since):
    out = []
    for path in sorted(glob.glob(f"{criterion_dir}/**/new/estimates.json", recursive=True)):
        if os.path.getmtime(path) < since:
            continue
        est = load(path)
        bench = load(os.path.join(os.path.dirname(path), "benchmark.json")) or {}
        if not est:
            continue
        out.append({
            "id": bench.get("full_id") or os.path.relpath(os.path.dirname(os.path.dirname(path)), criterion_dir),
            "mean_ns": est["mean"]["point_estimate"],
            "ci95_ns": [est["mean"]["confidence_interval"]["lower_bound"], est["mean"]["confidence_interval"]["upper_bound"]],
        })
    return out


def fmt_ns(ns):
    for unit, div in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= div:
            return f"{ns / div:.3g} {unit}"
    return f"{ns:.3g} ns"


def num(x, spec=",.0f"):
    return "not measured" if x is None else format(x, spec)


def render(perf):
    lines = []
    w = lines.append
    m = perf["machine"]
    w("# ipvs-lab performance (`make bench`)")
    w("")
    w(f"Generated by `bench/scripts/perf.sh` on {perf['generated_at']} in {perf['elapsed_s']} s "
      f"(load average before: {perf['load_before']}). Machine-readable twin: `perf.json`.")
    w("")
    w(f"- machine: {m['cores']} CPUs, {m['cpu_model']}; host kernel {m['host_kernel']}")
    w(f"- runner: {m['runner']}, guest kernel {m['guest_kernel']} ({m['guest_kernel_source']}); "
      f"build profile {m['build_profile']} (opt-level {m['opt_level']}); commit `{m['commit']}`")
    w(f"- repetitions: {perf['reps']}, {perf['duration_s']} s measured each; differences under ~15% are noise on shared 2-core machines")
    w("")
    w("## Figures against their goals (tracker issue 13)")
    w("")
    w("| figure | measured | goal |")
    w("|---|---|---|")
    lh = perf.get("loadgen_vs_h2load")
    if lh and lh.get("configs"):
        cells = "; ".join(f"{c['config']}: {c['ratio_rps']:.2f}" for c in lh["configs"])
        w(f"| loadgen / h2load RPS, same server, pinned | {cells} | ≥ 1.0 at every configuration |")
    else:
        w("| loadgen / h2load RPS | see loadgen-vs-h2load.md (no JSON twin) | ≥ 1.0 at every configuration |")
    vd = perf.get("vip_vs_direct")
    if vd:
        w(f"| VIP vs direct to rs1, UML, 4 ch × 64 callers | median {num(vd['median_vip_rps'])} vs {num(vd['median_direct_rps'])} RPC/s "
          f"({vd['ratio']:.2f}×); p50 {num(vd['median_vip_p50_us'])} vs {num(vd['median_direct_p50_us'])} µs | measured in every `make bench` |")
    else:
        w("| VIP vs direct | not measured | measured in every `make bench` |")
    b = perf["bringup"]
    if b.get("lab_bringup_ms") and b.get("commands_bringup_ms"):
        w(f"| bring-up / teardown, reference network, UML | lab {min(b['lab_bringup_ms']):.0f}–{max(b['lab_bringup_ms']):.0f} ms / "
          f"{min(b['lab_teardown_ms']):.0f}–{max(b['lab_teardown_ms']):.0f} ms; `ip`/`ipvsadm` commands "
          f"{min(b['commands_bringup_ms']):.0f}–{max(b['commands_bringup_ms']):.0f} ms / "
          f"{min(b['commands_teardown_ms']):.0f}–{max(b['commands_teardown_ms']):.0f} ms "
          f"({b.get('speedup_bringup', 0):.0f}× / {b.get('speedup_teardown', 0):.0f}×) | ≥ 10× |")
    rt = perf.get("uml_round_trip_s")
    if rt:
        w(f"| UML round trip, `lab exec rr-persistence --host director -- true` | {min(rt):.2f}–{max(rt):.2f} s (median {median(rt):.2f}) | < 0.3 s |")
    for name, goal in (("scale-16x1000", "passes; bring-up measured at 16 × 1,000"),
                       ("churn-100k", "100,000 churned connections from ≥ 4 client IPs")):
        s = perf["scenarios"].get(name)
        if not s:
            w(f"| `{name}` | not run | {goal} |")
            continue
        t = s.get("timing") or {}
        lat = s.get("latency_us") or {}
        verdict = "passes" if s["passed"] else "FAILS: " + ", ".join(map(str, s["failed_expectations"]))
        rate = s["connections"] / s["duration_s"] if s.get("duration_s") else None
        w(f"| `{name}` | {verdict}; {s['servers']} servers, {s['client_ips']} client IPs, {num(s['ok_rpcs'])} ok RPCs, "
          f"{num(s['errors'])} errors; {num(s['connections'])} connections ({num(rate)}/s over the run); "
          f"bring-up {num(t.get('bringup_ms'))} ms, teardown {num(t.get('teardown_ms'))} ms; p99 {num(lat.get('p99'))} µs; "
          f"{tables_text(s)} | {goal} |")
    w("")
    if lh and lh.get("configs"):
        w("## loadgen vs h2load (medians; every run in loadgen-vs-h2load.md)")
        w("")
        w("| conns × streams | h2load RPS | loadgen RPS | ratio | h2load p99 µs | loadgen p99 µs | h2load CPU µs/RPC | loadgen CPU µs/RPC |")
        w("|---|---|---|---|---|---|---|---|")
        for c in lh["configs"]:
            h, g = c["h2load"], c["loadgen"]
            w(f"| {c['config']} | {num(h.get('rps'))} | {num(g.get('rps'))} | {c['ratio_rps']:.2f} | {num(h.get('p99_us'))} | "
              f"{num(g.get('p99_us'))} | {num(h.get('cpu_us_per_rpc'), '.1f')} | {num(g.get('cpu_us_per_rpc'), '.1f')} |")
        w("")
    if vd:
        w("## VIP against direct, every pair")
        w("")
        w("| rep | VIP RPS | direct RPS | VIP p50 µs | direct p50 µs | VIP p99 µs | direct p99 µs |")
        w("|---|---|---|---|---|---|---|")
        for p in vd["pairs"]:
            w(f"| {p['rep']} | {p['vip_rps']:,.0f} | {p['direct_rps']:,.0f} | {p['vip_p50_us']} | {p['direct_p50_us']} | {p['vip_p99_us']} | {p['direct_p99_us']} |")
        w("")
    if perf["criterion"]:
        w("## Criterion (mean per iteration, 95% interval)")
        w("")
        w("| benchmark | mean | 95% interval |")
        w("|---|---|---|")
        for c in perf["criterion"]:
            w(f"| {c['id']} | {fmt_ns(c['mean_ns'])} | {fmt_ns(c['ci95_ns'][0])} – {fmt_ns(c['ci95_ns'][1])} |")
        w("")
    w("Figures from a one-CPU UML guest describe UML on this machine, not production hardware; ")
    w("the ratios measured side by side in one run are what carries over.")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--work", required=True)
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--criterion-dir", required=True)
    ap.add_argument("--elapsed-s", type=int, required=True)
    ap.add_argument("--load-before", default="")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--duration", type=float, default=5)
    a = ap.parse_args()
    bring, lab_reports = bringup(a.work)
    scenarios = {n: load(f"{a.work}/{n}.json") for n in ("scale-16x1000", "churn-100k")}
    try:
        round_trip = [int(l) / 1e6 for l in open(f"{a.work}/roundtrip.txt") if l.strip()]
    except OSError:
        round_trip = []
    stamp = f"{a.work}/criterion.stamp"
    perf = {
        "schema": 1,
        "generated_at": f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}",
        "elapsed_s": a.elapsed_s,
        "load_before": a.load_before,
        "reps": a.reps,
        "duration_s": a.duration,
        "machine": machine(lab_reports + [r for r in scenarios.values() if r]),
        "loadgen_vs_h2load": load(f"{a.out_dir}/loadgen-vs-h2load.json"),
        "uml_round_trip_s": round_trip,
        "vip_vs_direct": vip_vs_direct(a.work, a.reps),
        "bringup": bring,
        "scenarios": {n: scenario_figures(r) for n, r in scenarios.items() if r},
        "criterion": criterion(a.criterion_dir, os.path.getmtime(stamp)) if os.path.exists(stamp) else [],
    }
    md = render(perf)
    try:
        with open(f"{a.out_dir}/perf.json", "w") as f:
            json.dump(perf, f, indent=2)
            f.write("\n")
        with open(f"{a.out_dir}/perf.md", "w") as f:
            f.write(md)
    except OSError as e:
        print(f"perf_report: cannot write the report to {a.out_dir}: {e}", file=sys.stderr)
        return 73
    sys.stdout.write(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
