"""Benchmark: CLI start-up, and the gate's own overhead on real models.

Prints (measures, asserts nothing):
- `model-gate --help` and `model-gate policy validate` wall time, median of 5, next to `mlflow --version`
  (goal: under 0.5 s each);
- for the quick start's iris model and for all-MiniLM-L6-v2, each registered in a local mlflow server:
  the wall time of `model-gate check --dry-run` with the example policy (median of N), and the anchor:
  a bare Python process that does only what any use of the model costs - import mlflow.pyfunc, load the
  same downloaded model, and make the same predictions (smoke inputs, the evaluation set, predict_proba
  when the policy needs probabilities, the single-row latency calls). The gate's overhead is
  (gate - anchor) / gate (goal for iris: under 25 %). Also the strict reading, total minus the model
  process's own load_model and predict time (which counts importing mlflow to load the model as the
  gate's), and the gate's per-stage timings.

Run: .venv/bin/python benchmarks/gate.py [--runs N] [--skip-minilm]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[0] = str(ROOT)  # this script's own folder would shadow the gate package with this file
sys.path.insert(1, str(ROOT / "tests"))
sys.path.insert(2, str(ROOT / "examples" / "quickstart"))
BIN = Path(sys.executable).parent

# The bare process: everything a user of the model pays, nothing of the gate. It prints a line
# when the last prediction returned; the time is taken when the parent reads it (no teardown).
ANCHOR = textwrap.dedent("""
    import json, sys
    import mlflow.pyfunc, pandas as pd
    spec = json.loads(sys.argv[1])
    model = mlflow.pyfunc.load_model(spec["model"])
    for kind, data in spec["smoke"]:
        model.predict(data if kind == "strings" else pd.DataFrame(data))
    if spec["dataset"]:
        frame = pd.read_csv(spec["dataset"])
        features = frame.drop(columns=[spec["target"]])
        model.predict(features)
        if spec["proba"]:
            model.get_raw_model().predict_proba(features)
        for i in range(min(spec["latency_samples"], len(features))):
            model.predict(features.iloc[i:i + 1])
    print("done", flush=True)
""")


def wall(argv: list[str], runs: int = 5, env: dict | None = None) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, env=env)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def time_gate(policy: Path, uri: str, env: dict, workdir: Path | None = None) -> tuple[float, dict]:
    argv = [str(BIN / "model-gate"), "check", "--policy", str(policy), "--model-uri", uri, "--dry-run",
            "--format", "json"]
    if workdir is not None:
        argv += ["--workdir", str(workdir)]
    started = time.perf_counter()
    out = subprocess.run(argv, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - started
    if out.returncode != 0:
        raise SystemExit(f"model-gate check {uri} exited {out.returncode}: {out.stderr.strip()[-500:]}")
    return elapsed, json.loads(out.stdout)


def anchor_spec(policy_path: Path, model_dir: Path) -> dict:
    """The predictions the gate makes under this policy, for the anchor to repeat."""
    from gate.evaluate import LATENCY_SAMPLES
    from gate.policy import load_policy

    loaded = load_policy(policy_path)
    policy = loaded.policy
    smoke = []
    for case in policy.smoke.cases if policy.smoke else []:
        given = case.input
        if given.records is not None:
            smoke.append(("records", given.records))
        elif given.rows is not None:
            smoke.append(("records", [dict(zip(given.columns, row)) for row in given.rows]))
        elif given.strings is not None:
            smoke.append(("strings", given.strings))
    evaluation = policy.evaluation
    metrics = evaluation.selected_metrics([]) if evaluation else []
    return {
        "model": str(model_dir),
        "smoke": smoke,  # records become a DataFrame, as in the gate's model process
        "dataset": str(loaded.resolve_path(evaluation.dataset)) if evaluation else None,
        "target": evaluation.target if evaluation else None,
        "proba": any(m in ("roc_auc", "log_loss") for m in metrics),
        "latency_samples": LATENCY_SAMPLES if any(m.startswith("latency") for m in metrics) else 0,
    }


def measure(label: str, policy: Path, uri: str, env: dict, runs: int) -> None:
    with tempfile.TemporaryDirectory() as keep:
        # One warm-up run keeps its download: the anchor loads exactly the files the gate loaded.
        time_gate(policy, uri, env, workdir=Path(keep))
        spec = anchor_spec(policy, next((Path(keep) / "candidate").rglob("MLmodel")).parent)
        anchor_env = {**env, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        gates, anchors, strict, report = [], [], [], {}
        for _ in range(runs):  # interleaved, so both see the same machine
            elapsed, report = time_gate(policy, uri, env)
            gates.append(elapsed)
            model_s = report["timings"].get("candidate_load", 0.0) + report["timings"].get("candidate_predict", 0.0)
            strict.append((elapsed - model_s) / elapsed)
            anchors.append(time_anchor(spec, anchor_env))
    gate_s, anchor_s = statistics.median(gates), statistics.median(anchors)
    print(f"\n{label}: model-gate check --dry-run, median of {runs}")
    print(f"  decision                        {report['decision']}")
    print(f"  gate, wall                      {gate_s:6.2f} s   (runs: {', '.join(f'{t:.2f}' for t in gates)})")
    print(f"  anchor: import + load + predict {anchor_s:6.2f} s   (runs: {', '.join(f'{t:.2f}' for t in anchors)})")
    print(f"  gate overhead                   {gate_s - anchor_s:6.2f} s = {(gate_s - anchor_s) / gate_s:.0%} "
          "of the gate's time")
    print(f"  strict: gate minus the model process's load_model + predict calls = "
          f"{statistics.median(strict):.0%} of the gate's time (its mlflow import counts as overhead)")
    print(f"  stages of the last run (s)      {json.dumps(report['timings'])}")


def time_anchor(spec: dict, env: dict) -> float:
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-c", ANCHOR, json.dumps(spec)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env)
    line = process.stdout.readline()
    elapsed = time.perf_counter() - started
    process.kill()
    _, err = process.communicate()
    if line.strip() != "done":
        raise SystemExit(f"the anchor process failed for {spec['model']}: {err.strip()[-500:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--skip-minilm", action="store_true")
    args = parser.parse_args()

    policy = ROOT / "examples" / "policies" / "iris.yaml"
    help_s = wall([str(BIN / "model-gate"), "--help"])
    validate_s = wall([str(BIN / "model-gate"), "policy", "validate", str(policy)])
    mlflow_s = wall([str(BIN / "mlflow"), "--version"])
    print("CLI start-up, median of 5")
    print(f"  model-gate --help            {help_s:6.3f} s   ({help_s / mlflow_s:.2f} x mlflow --version)")
    print(f"  model-gate policy validate   {validate_s:6.3f} s   ({validate_s / mlflow_s:.2f} x mlflow --version)")
    print(f"  mlflow --version             {mlflow_s:6.3f} s")

    from models import log_iris_model, log_minilm_model
    from servers import start_mlflow

    with tempfile.TemporaryDirectory() as tmp:
        server = start_mlflow(Path(tmp) / "mlflow")
        try:
            env = {**os.environ, "MLFLOW_TRACKING_URI": server.url}
            iris = log_iris_model(server.url, "bench-iris", "good")
            measure("iris (scikit-learn)", policy, f"models:/bench-iris/{iris}", env, args.runs)
            if not args.skip_minilm:
                minilm = log_minilm_model(server.url, "bench-minilm")
                measure("all-MiniLM-L6-v2 (sentence-transformers)", ROOT / "examples" / "policies" / "minilm.yaml",
                        f"models:/bench-minilm/{minilm}", env, args.runs)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
