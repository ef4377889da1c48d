"""Benchmark: CLI start-up, and the gate's own overhead on the iris model.

Prints (measures, asserts nothing):
- `model-gate --help` and `model-gate policy validate` wall time, median of 5, next to `mlflow --version`
  (goal: under 0.5 s each);
- one full `model-gate check` of the quick start's iris model against a local mlflow server:
  total wall time, the model's own load + predict time (measured inside the model process), and the
  gate's overhead = (total - load - predict) / total (goal: under 25 %).

Run: .venv/bin/python benchmarks/gate.py
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "examples" / "quickstart"))
BIN = Path(sys.executable).parent


def wall(argv: list[str], runs: int = 5, env: dict | None = None) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, env=env)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    policy = ROOT / "examples" / "policies" / "iris.yaml"
    help_s = wall([str(BIN / "model-gate"), "--help"])
    validate_s = wall([str(BIN / "model-gate"), "policy", "validate", str(policy)])
    mlflow_s = wall([str(BIN / "mlflow"), "--version"])
    print("CLI start-up, median of 5")
    print(f"  model-gate --help            {help_s:6.3f} s   ({help_s / mlflow_s:.2f} x mlflow --version)")
    print(f"  model-gate policy validate   {validate_s:6.3f} s   ({validate_s / mlflow_s:.2f} x mlflow --version)")
    print(f"  mlflow --version             {mlflow_s:6.3f} s")

    from models import log_iris_model
    from servers import start_mlflow

    with tempfile.TemporaryDirectory() as tmp:
        server = start_mlflow(Path(tmp) / "mlflow")
        try:
            version = log_iris_model(server.url, "bench-iris", "good")
            env = {**os.environ, "MLFLOW_TRACKING_URI": server.url}
            started = time.perf_counter()
            out = subprocess.run([str(BIN / "model-gate"), "check", "--policy", str(policy), "--model-uri",
                                  f"models:/bench-iris/{version}", "--dry-run", "--format", "json"],
                                 capture_output=True, text=True, env=env)
            total = time.perf_counter() - started
        finally:
            server.stop()
    report = json.loads(out.stdout)
    timings = report["timings"]
    model_s = sum(v for k, v in timings.items() if k.endswith(("_load", "_predict")))
    imports_s = sum(v for k, v in timings.items() if k.endswith("_imports"))
    print("\nGate on the iris model (dry run, no baseline), one run")
    print(f"  decision                     {report['decision']}")
    print(f"  total wall time              {total:6.2f} s")
    print(f"  model load + predict         {model_s:6.2f} s   {json.dumps(timings)}")
    print(f"  gate overhead                {total - model_s:6.2f} s = {(total - model_s) / total:.0%} of the total")
    # The model process imports mlflow.pyfunc before it can load anything; that import is part of
    # loading an MLflow model, and it runs while the gate resolves and downloads.
    with_imports = model_s + imports_s
    print(f"  ... counting the model process's mlflow import ({imports_s:.2f} s) as model loading: "
          f"{total - with_imports:.2f} s = {(total - with_imports) / total:.0%}")


if __name__ == "__main__":
    main()
