"""Benchmark: the DSO tier end to end on one machine (issue 16): generate, audit, map, stage, plan.

Prints one JSON object (the last stdout line; progress goes to stderr). Each step is the real CLI
(``dos2hl generate|audit|map propose|map confirm|stage|plan``) in its own subprocess, run once on a
group-size practice (the baseline, measured in the same invocation) and once on the large size:

  seconds        wall time of the step (process start to exit, imports included)
  cpu_s          its CPU seconds (user + system, the child and what it waited for): on a shared
                 machine the wall time says more about the neighbours than about the step
  peak_rss_mb    the step's largest process: ``os.wait4``'s ru_maxrss of the child, which on Linux
                 is the maximum over the child and every descendant it waited for (none of these
                 steps starts Ray or a process pool; staging's readers are threads of the one process;
                 ``generate`` from 10 k patients writes some tables in a second process, which it
                 joins, so its CPU seconds are in ``cpu_s`` too)
  tree_rss_mb    the sum of RSS over the step's whole process tree, sampled every 0.25 s with psutil
                 (catches a child that would not have been waited for)
  rows           what the step reports: generated rows, records read by audit and stage, payloads
                 planned (``plan``: contacts + records + opportunities + notes + files)

and ``rss_ratio`` = the largest step's peak RSS at the large size / at group size. The target:
every step under 2048 MB and ``rss_ratio`` near 1 (memory flat while the rows grow 50x). With three
sizes or more, the curve's last segment (the largest size against the one before) says whether memory
still grows with the rows: ``rss_ratio_last_by_step`` and ``rss_mb_per_m_rows_last`` (MB of peak RSS
per million more rows the step reports; 0 = level).

``plan`` needs no HighLevel sandbox: it plans every shard with the run's pure functions, from the
``stage`` step's staging (``stage`` runs with ``--profile MAPPING``, ``plan`` with ``--staged``, as an
operator would); without a staging from this invocation it stages the export again (into ``TMPDIR``,
set to the work folder). It takes the map, so ``map propose`` and ``map confirm`` run (and are timed)
first.

Documents: the export is generated with ``--images none`` (DOCUMENT.CSV is complete; the image
files are not written). With stub images the 1 M-patient export would hold ~10 million tiny files
(~46 GB on a 4 KB-block disk); the readers never open them except ``stage``'s per-document file
check, which then reports them missing (a finding, counted; the rows stage the same way).

    python bench/dso.py --quick           group (20 k patients, 4 locations) and 100 k patients, 60 locations
    python bench/dso.py                   group and the DSO tier (1 M patients, 60 locations): hours
    python bench/dso.py --dir /big/disk   the work folder (default: a temp dir under TMPDIR); the 1 M
                                          export needs ~40 GB free (export, truth, two staged copies)
    python bench/dso.py --sizes 10000 --steps generate,stage   measure some steps at some sizes
    python bench/dso.py --sizes 20000,200000,1000000 --steps audit,stage   where the curve levels off
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOS2HL = str(Path(sys.executable).with_name("dos2hl"))
STEPS = ("generate", "audit", "map_propose", "map_confirm", "stage", "plan")
GROUP = (20_000, 4)  # dos2hl/generate/params.py TIERS["group"]
DSO = (1_000_000, 60)  # TIERS["dso"]


def _log(msg: str) -> None:
    print(f"[bench/dso] {msg}", file=sys.stderr, flush=True)


def _tree_rss(pid: int) -> int:
    import psutil

    try:
        p = psutil.Process(pid)
        procs = [p, *p.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for q in procs:
        try:
            total += q.memory_info().rss
        except psutil.Error:
            pass
    return total


def measure(cmd: list[str], env: dict[str, str], log: Path) -> dict[str, Any]:
    """Run ``cmd``; its wall time, the largest process's peak RSS, the sampled tree RSS, its last stdout
    line as JSON (or None)."""
    t0 = time.perf_counter()
    with open(log, "wb") as err, tempfile.TemporaryFile() as out:
        p = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=ROOT)
        peak_tree = 0
        done = threading.Event()

        def sample() -> None:
            nonlocal peak_tree
            last = 0.0
            with open(log.with_suffix(".rss"), "w") as trace:  # elapsed s, tree RSS MB: partial runs too
                while not done.wait(0.25):
                    rss = _tree_rss(p.pid)
                    peak_tree = max(peak_tree, rss)
                    now = time.perf_counter() - t0
                    if now - last >= 10:
                        trace.write(f"{now:.0f} {rss // 2**20}\n")
                        trace.flush()
                        last = now

        th = threading.Thread(target=sample, daemon=True)
        th.start()
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - t0
        done.set()
        th.join()
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
    if p.returncode != 0:
        raise SystemExit(f"{cmd[1:3]} exited {p.returncode}; see {log}")
    last = text.strip().splitlines()[-1] if text.strip() else ""
    try:
        parsed = json.loads(last)
    except ValueError:
        parsed = None
    return {"seconds": round(seconds, 1), "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
            "peak_rss_mb": usage.ru_maxrss // 1024,
            "tree_rss_mb": peak_tree // (1024 * 1024), "json": parsed}


def _rows(step: str, out: Any) -> int | None:
    if not isinstance(out, dict):
        return None
    if step == "generate":
        return int(out["rows_total"])
    if step == "audit":  # "1315006 records = ... clean + ... repaired + ... quarantined"
        ident = str(out.get("identity") or "").split(" ", 1)[0]
        return int(ident) if ident.isdigit() else None
    if step == "stage":
        totals = out.get("totals") or {}
        return int(totals["records"]) if "records" in totals else None
    if step == "plan":
        return sum(r["records"] for loc in out.get("locations", {}).values() for r in loc.get("rows", [])
                   if not r["object"].startswith(("relation", "file_link"))) or None
    return None


def run_size(work: Path, patients: int, locations: int, steps: tuple[str, ...], seed: int) -> dict[str, Any]:
    """Every step on one practice size, in order; the per-step figures."""
    d = work / f"p{patients}"
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / "tmp"
    tmp.mkdir(exist_ok=True)
    env = {**os.environ, "TMPDIR": str(tmp), "DOS2HL_STORAGE": str(d / "runs")}
    export, mapping = str(d / "gen" / "export"), str(d / "mapping.yaml")
    cmds = {
        "generate": [DOS2HL, "generate", str(d / "gen"), "--tier", "dso", "--patients", str(patients),
                     "--locations", str(locations), "--seed", str(seed), "--images", "none", "--json"],
        "audit": [DOS2HL, "audit", export, "--out", str(d / "audit"), "--json"],
        "map_propose": [DOS2HL, "map", "propose", export, "--out", mapping, "--force", "--json"],
        "map_confirm": [DOS2HL, "map", "confirm", mapping, "--by", "bench/dso.py"],
        "stage": [DOS2HL, "stage", export, "--to", str(d / "staged"), "--profile", mapping, "--overwrite",
                  "--json"],
        "plan": [DOS2HL, "plan", export, "--mapping", mapping, "--json"],
    }
    if "stage" in steps:  # plan from this staging (``dos2hl plan --staged``), not a second one of its own
        cmds["plan"] += ["--staged", str(d / "staged")]
    res: dict[str, Any] = {"patients": patients, "locations": locations, "steps": {}}
    for step in steps:
        _log(f"{patients} patients: {step} ...")
        m = measure(cmds[step], env, d / f"{step}.log")
        m["rows"] = _rows(step, m.pop("json"))
        res["steps"][step] = m
        _log(f"{patients} patients: {step} {m}")
    shutil.rmtree(tmp, ignore_errors=True)
    return res


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The printed object: every size's figures, and how the peaks grow from the first size to the last."""
    result: dict[str, Any] = {"sizes": runs}
    if len(runs) >= 2:
        base, big = runs[0]["steps"], runs[-1]["steps"]
        peak = {s: max(base[s]["peak_rss_mb"], base[s]["tree_rss_mb"]) for s in base}
        peak_big = {s: max(big[s]["peak_rss_mb"], big[s]["tree_rss_mb"]) for s in big}
        result["rss_ratio"] = round(max(peak_big.values()) / max(peak.values()), 2)
        result["rss_ratio_by_step"] = {s: round(peak_big[s] / peak[s], 2) for s in peak if peak[s]}
        if len(runs) >= 3:
            prev = runs[-2]["steps"]
            peak_prev = {s: max(prev[s]["peak_rss_mb"], prev[s]["tree_rss_mb"]) for s in prev}
            result["rss_ratio_last_by_step"] = {s: round(peak_big[s] / peak_prev[s], 2)
                                                for s in peak_prev if peak_prev[s]}
            result["rss_mb_per_m_rows_last"] = {
                s: round((peak_big[s] - peak_prev[s]) * 1e6 / (big[s]["rows"] - prev[s]["rows"]), 2)
                for s in peak_prev if (big[s].get("rows") or 0) > (prev[s].get("rows") or 0)}
        result["peak_rss_mb"] = max(peak_big.values())
        result["under_2048_mb"] = result["peak_rss_mb"] < 2048
        gr = base.get("generate", {}).get("rows")
        br = big.get("generate", {}).get("rows")
        if gr and br:
            result["rows_ratio"] = round(br / gr, 1)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="100 k patients (60 locations) instead of 1 M")
    ap.add_argument("--sizes", default=None, help="comma-separated patient counts instead of group + large")
    ap.add_argument("--steps", default=",".join(STEPS), help="comma-separated steps, in order")
    ap.add_argument("--dir", default=None, help="work folder (kept); default: a temp dir, removed after")
    ap.add_argument("--seed", type=int, default=42)
    a = ap.parse_args()
    steps = tuple(s for s in a.steps.split(",") if s)
    unknown = set(steps) - set(STEPS)
    if unknown:
        raise SystemExit(f"unknown steps {sorted(unknown)}; choose from {STEPS}")
    if a.sizes:
        sizes = [(int(n), GROUP[1] if int(n) <= GROUP[0] else DSO[1]) for n in a.sizes.split(",")]
    else:
        sizes = [GROUP, (100_000, DSO[1]) if a.quick else DSO]
    work = Path(a.dir) if a.dir else Path(tempfile.mkdtemp(prefix="dos2hl-bench-dso-"))
    work.mkdir(parents=True, exist_ok=True)
    _log(f"work folder {work}; free {shutil.disk_usage(work).free // 2**30} GB")
    try:
        runs = [run_size(work, n, k, steps, a.seed) for n, k in sizes]
    finally:
        if not a.dir:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(summarize(runs)))


if __name__ == "__main__":
    main()
