"""The cluster rehearsal (``make rehearsal``): every job, submitted with ``msm submit``, on a Ray cluster of two
nodes that share no disk (:mod:`msm.cluster.rehearsal`: node B in a private mount namespace), every input and
output in an S3 bucket (SeaweedFS on loopback); the same chain on one node first; then node-loss drills.

    python benchmarks/cluster_rehearsal.py                      # the whole rehearsal (~15-20 min on 2 CPUs)
    python benchmarks/cluster_rehearsal.py --slim               # mine, then pretrain with node B lost (make test)
    python benchmarks/cluster_rehearsal.py --stages mine,pretrain --drills pretrain
    # a real cluster and bucket (the job API port-forwarded, AWS_* set for the bucket; no one-node reference run):
    python benchmarks/cluster_rehearsal.py --address http://127.0.0.1:8265 --bucket s3://my-bucket/rehearsal \
        --kill-command "kubectl -n msm delete pod -l ray.io/group=cpu-workers --wait=false"

Prints a table (stage, 1-node s, 2-node s, outcome, drill outcome) and writes
``benchmarks/results/cluster-rehearsal.json``. Root only (``unshare -m``); docs/deploy.md "Cluster rehearsal".
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from harness import REPO, write_results

STAGES = ("mine", "index", "pretrain", "finetune", "eval", "tune")
DRILLS = ("mine", "pretrain", "finetune", "driver")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--stages", default=",".join(STAGES), help="comma-separated, in chain order (default: all)")
    p.add_argument("--drills", default=",".join(DRILLS), help=f"comma-separated of {', '.join(DRILLS)}, or none")
    p.add_argument("--slim", action="store_true", help="mine on two nodes, then pretraining on both with node B lost "
                                                       "after its first checkpoint (no one-node run, no undisturbed "
                                                       "pretraining to compare with): what make test runs")
    p.add_argument("--data-dir", default=None, help="the shared data folder (default: $MSM_DATA_DIR or ../shared/data)")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "cluster-rehearsal.json"))
    p.add_argument("--keep-logs", default=None, help="copy the job logs here (default: a temp folder, removed)")
    p.add_argument("--address", default=None, help="a running cluster's job API instead of the local two nodes "
                                                   "(default: start them here)")
    p.add_argument("--bucket", default=None, help="with --address: the s3:// (or gs://) prefix the jobs read and "
                                                  "write, reached with this environment's credentials")
    p.add_argument("--kill-command", default=None, help="with --address: the command a drill runs to take a worker "
                                                        "node away (default: no node-loss drill)")
    args = p.parse_args(argv)
    report = rehearse(args)
    print(table(report))
    if args.out:
        write_results(Path(args.out), report)
        print(f"written: {args.out}")
    return 0 if report["passed"] else 1


def rehearse(args) -> dict:
    from msm.cluster.local_head import start_local_head
    from msm.cluster.rehearsal import (CommandNode, Submitter, existing_store, join_node, outcome, same, stage_jobs,
                                       start_seaweedfs, upload_inputs)
    from msm.data.readers import default_data_dir

    stages = ["mine"] if args.slim else [s for s in args.stages.split(",") if s]
    drills = ["pretrain"] if args.slim else [d for d in args.drills.split(",") if d and d != "none"]
    if args.address:  # a real cluster: its own nodes and bucket, no one-node reference, drills by the user's command
        if not args.bucket:
            raise SystemExit("--address needs --bucket s3://bucket/prefix (where the jobs read and write)")
        drills = [d for d in drills if d == "driver"] if not args.kill_command else drills
    data_dir = Path(args.data_dir) if args.data_dir else default_data_dir()
    logs = Path(tempfile.mkdtemp(prefix="msm-rehearsal-"))
    started = time.time()
    store = existing_store(args.bucket) if args.address else start_seaweedfs()
    head = node = None
    rows: dict[str, dict] = {s: {"stage": s} for s in stages}
    drill_rows: dict[str, dict] = {}
    try:
        os.environ.update(store.env)
        inputs = upload_inputs(store, data_dir)
        if args.address:
            head, node = None, CommandNode(args.kill_command or "false")
        else:
            head = start_local_head(num_cpus=2, base_env={**os.environ, **store.env})
        sub = Submitter(args.address or head.job_address, store, REPO, logs)
        if not args.slim and not args.address:  # the same chain on node A alone: the reference
            jobs = stage_jobs(store, "one", inputs)
            for s in stages:
                got = sub.run(f"one-{s}", jobs[s])
                rows[s].update({"one_node_s": got["seconds"], "one_node_ok": got["ok"],
                                "one": outcome(s, jobs[s]["out"])})
        private = [REPO / "outputs", REPO / "runs", Path.home() / ".cache" / "msm" / "remote",
                   Path.home() / ".cache" / "msm" / "data"]
        node = node or join_node(head, 2, private, store.env)
        jobs = stage_jobs(store, "two", inputs)
        for s in stages:
            got = sub.run(f"two-{s}", jobs[s])
            two = outcome(s, jobs[s]["out"])
            rows[s].update({"two_node_s": got["seconds"], "two_node_ok": got["ok"], "two": two})
            if "one" in rows[s]:
                ok, why = same(s, rows[s]["one"], two)
                rows[s].update({"same_as_one_node": ok, "comparison": why})
        for d in drills:
            try:
                drill_rows[d] = run_drill(d, sub, node, store, inputs, rows)
            except Exception as exc:  # a drill that cannot even run is a failed drill, and the others still run
                drill_rows[d] = {"passed": False, "stage": "mine" if d == "driver" else d,
                                 "outcome": f"drill failed: {type(exc).__name__}: {exc}"}
    finally:
        if node is not None:
            node.stop()
        if head is not None:
            head.stop()
        if not args.address:
            store.stop()
        if args.keep_logs:
            shutil.copytree(logs, args.keep_logs, dirs_exist_ok=True)
        shutil.rmtree(logs, ignore_errors=True)
    for s, row in rows.items():
        row["drill"] = drill_rows.get(s, {}).get("outcome", "")
    passed = (all(r.get("two_node_ok") and r.get("two", {}).get("complete") for r in rows.values())
              and all(r.get("same_as_one_node", True) for r in rows.values())
              and all(d.get("passed") for d in drill_rows.values()))
    return {"passed": passed, "slim": args.slim, "seconds": round(time.time() - started, 1),
            "cluster": (f"{args.address}, {args.bucket}" if args.address else
                        "node A (head, 2 CPUs) + node B (2 CPUs, private mount namespace), SeaweedFS on loopback"),
            "load_before": os.getloadavg(), "stages": list(rows.values()), "drills": drill_rows}


def run_drill(name: str, sub, node, store, inputs: dict, rows: dict) -> dict:
    """One drill on the two-node cluster; its outcome compared with the undisturbed two-node run of the stage."""
    from msm.cluster.rehearsal import (exists, kill_node_when, outcome, same, stage_jobs, wait_for)
    from msm.uri import resolve, sibling

    tag = f"drill-{name}"
    jobs = stage_jobs(store, tag, inputs, upstream="two")  # on the undisturbed chain's inputs
    if name == "driver":
        import psutil

        spec = jobs["mine"]
        staging = sibling(resolve(spec["out"]), "staging").uri

        def kill_driver(proc):
            waited = wait_for("the mine job's staging folder", lambda: exists(staging), 300, proc, poll_s=0.2)
            pids = [p.pid for p in psutil.process_iter(["cmdline"])
                    if "jobs/mine.py" in " ".join(p.info["cmdline"] or []) and tag in " ".join(p.info["cmdline"])]
            for pid in pids:
                os.kill(pid, 9)
            return {"killed": f"the job's driver (pid {pids})", "after_s": waited}
        first = sub.run(f"{tag}-killed", spec, during=kill_driver)
        left = outcome("mine", spec["out"])
        staged = exists(staging)
        again = sub.run(f"{tag}-rerun", spec)
        final = outcome("mine", spec["out"])
        ok, why = same("mine", rows["mine"]["two"], final) if "mine" in rows else (final["complete"], "")
        passed = (not first["ok"]) and not left["complete"] and again["ok"] and ok
        return {"passed": passed, "stage": "mine", "killed_run_ok": first["ok"], "complete_after_kill": left["complete"],
                "staging_left": staged, "rerun_ok": again["ok"], "rerun_s": again["seconds"], "comparison": why,
                "drill": first.get("drill"),
                "outcome": f"driver killed: {'nothing' if not left['complete'] else 'an output'} looked complete; "
                           f"re-run {'committed, ' + why if again['ok'] else 'FAILED'}"}
    stage = name
    spec = jobs[stage]
    if stage == "mine":
        log = sub.log_dir / f"{tag}.log"
        from msm.cluster.rehearsal import job_log_has
        trigger, what = job_log_has(log, "MapBatches"), "the embed stage running"
    else:
        base = resolve(spec["out"])
        trigger = (lambda: bool(base.files("trainer_state.json")) if base.exists() else False)
        what = "the first checkpoint at the URI"
    got = sub.run(tag, spec, during=kill_node_when(node, what, trigger))
    result = outcome(stage, spec["out"])
    ok, why = same(stage, rows[stage]["two"], result) if stage in rows and "two" in rows[stage] else (
        result.get("complete", False), "no undisturbed run to compare")
    once = stage == "mine" or result["steps"] == sorted(set(result["steps"]))
    count = "" if stage != "mine" else (f"; input {result['input']} = kept {result['kept']} + quarantined "
                                        f"{result['quarantined']}")
    return {"passed": got["ok"] and ok and once, "stage": stage, "ok": got["ok"], "seconds": got["seconds"],
            "drill": got.get("drill"), "comparison": why, "every_step_once": once, "result": result,
            "outcome": f"node B lost at {what}: job {'completed' if got['ok'] else 'FAILED'}, {why}{count}"}


def table(report: dict) -> str:
    lines = ["| stage | 1-node s | 2-node s | outcome | drill outcome |", "|---|---:|---:|---|---|"]
    for r in report["stages"]:
        outcome_text = ("complete" if r.get("two", {}).get("complete") else "FAILED") + (
            f"; vs 1 node: {r['comparison']}" if "comparison" in r else "")
        lines.append(f"| {r['stage']} | {r.get('one_node_s', '')} | {r.get('two_node_s', '')} | {outcome_text} | "
                     f"{r.get('drill', '')} |")
    shown = {r["stage"] for r in report["stages"]}
    for name, d in report["drills"].items():
        if name != "driver" and d.get("stage") not in shown:
            lines.append(f"| {d.get('stage', name)} (drill only) | | {d.get('seconds', '')} | | {d['outcome']} |")
    driver = report["drills"].get("driver")
    if driver:
        lines.append(f"| mine (driver killed) | | {driver.get('rerun_s', '')} | | {driver['outcome']} |")
    lines.append(f"\npassed: {report['passed']} ({report['seconds']} s in all)")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.path.insert(0, str(REPO / "platform"))
    sys.exit(main())
