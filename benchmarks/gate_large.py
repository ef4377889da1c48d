"""Benchmark: the gate on a large signed model, next to what the same work costs step by step.

A real MLflow model (a pyfunc model from code whose weights are safetensors files totalling
--gib GiB) is signed with an OMS key bundle, registered in a local mlflow server (artifacts proxied
by the server, as in production), and gated with a policy that requires the signature, allows only
safetensors weights and runs one smoke case. Printed (measures, asserts nothing):

- the gate: `model-gate check --dry-run` wall time, its stage timings and the peak RSS of the gate
  process and of its model process;
- the anchors, each in a fresh process: `mlflow artifacts download` of the same version,
  `model-gate verify` of the downloaded folder, and a bare import + load + predict of it;
- the ratio gate / (download + verify + load), i.e. against doing the same steps one after another.

Run: .venv/bin/python benchmarks/gate_large.py [--gib 1] [--files 4]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[0] = str(ROOT)  # benchmarks/gate.py would shadow the gate package
sys.path.insert(1, str(ROOT / "tests"))
BIN = Path(sys.executable).parent
NAME = "bench-large"

# The model: reads one small slice of every weight file at load (safetensors memory-maps), so
# loading costs what opening the files costs, not a copy of GiBs into memory.
MODEL_CODE = textwrap.dedent("""
    import mlflow.pyfunc
    from mlflow.models import set_model


    class Large(mlflow.pyfunc.PythonModel):
        def load_context(self, context):
            from pathlib import Path

            from safetensors import safe_open

            self.scale = 0.0
            for path in sorted(Path(context.artifacts["weights"]).glob("*.safetensors")):
                with safe_open(str(path), framework="numpy") as weights:
                    for name in weights.keys():
                        self.scale += float(weights.get_slice(name)[:1][0])

        def predict(self, context, model_input, params=None):
            return [float(x) * 0 + 1.0 for x in model_input["x"]]


    set_model(Large())
""")

POLICY = textwrap.dedent("""
    version: 1
    integrity:
      signature:
        required: true
        method: key
        public_keys: [{public_key}]
    formats:
      allowed: [safetensors]
      pickle: deny
    load:
      timeout_s: 600
    smoke:
      timeout_s: 120
      cases:
        - name: one-row
          input:
            records: [{{x: 1.0}}]
          expect:
            rows: 1
""")


def timed_with_rss(argv: list[str], env: dict) -> tuple[float, float, str]:
    """Wall seconds, peak RSS in MiB (wait4: the largest of the process and the children it waited for),
    stdout."""
    started = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    out = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(argv[:3])} failed")
    return elapsed, usage.ru_maxrss / 1024, out


def write_weights(folder: Path, total: int, files: int) -> None:
    import numpy as np
    from safetensors.numpy import save_file

    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    per_file = total // files
    for index in range(files):
        # 4 tensors per file; float32 values, so every byte is part of a valid tensor
        count = per_file // 4 // 4
        tensors = {f"layer{index}.w{k}": rng.standard_normal(count, dtype=np.float32) for k in range(4)}
        save_file(tensors, str(folder / f"model-{index:05d}-of-{files:05d}.safetensors"))
        del tensors


def prepare(tmp_path: Path, gib: float, files: int) -> None:
    """Weights, the signed MLflow model folder and the policy (run in its own process, see main)."""
    import mlflow.pyfunc

    weights = tmp_path / "weights"
    write_weights(weights, int(gib * 1024**3), files)
    code = tmp_path / "large_model.py"
    code.write_text(MODEL_CODE)
    folder = tmp_path / "model"
    mlflow.pyfunc.save_model(folder, python_model=str(code), artifacts={"weights": str(weights)},
                             pip_requirements=["mlflow", "safetensors", "numpy"])
    subprocess.run([str(BIN / "model-gate"), "keygen", "--out-dir", str(tmp_path / "keys")], check=True,
                   capture_output=True)
    subprocess.run([str(BIN / "model-gate"), "sign", str(folder), "--key", str(tmp_path / "keys" / "model-signing.pem")],
                   check=True, capture_output=True)
    (tmp_path / "gate.yaml").write_text(POLICY.format(public_key=tmp_path / "keys" / "model-signing.pub.pem"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--prepare", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.prepare:
        return prepare(args.prepare, args.gib, args.files)

    from servers import start_mlflow

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        # A separate process builds the model: a forked child starts with its parent's peak RSS on
        # Linux, so this process stays small for the children's numbers to be their own.
        subprocess.run([sys.executable, __file__, "--prepare", str(tmp_path), "--gib", str(args.gib),
                        "--files", str(args.files)], check=True, capture_output=True)
        folder, policy = tmp_path / "model", tmp_path / "gate.yaml"
        size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())

        server = start_mlflow(tmp_path / "mlflow")
        try:
            env = {**os.environ, "MLFLOW_TRACKING_URI": server.url, "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
            subprocess.run([str(BIN / "model-gate"), "register", "--name", NAME, "--source", str(folder)], check=True,
                           capture_output=True, env=env)
            uri = f"models:/{NAME}/1"
            gate_s, gate_rss, out = timed_with_rss(
                [str(BIN / "model-gate"), "check", "--policy", str(policy), "--model-uri", uri, "--dry-run",
                 "--format", "json"], env)
            report = json.loads(out)

            # The version's own artifact location, as the gate downloads it (a models:/ download
            # would add MLflow's registered_model_meta file, which the signature does not cover).
            _, _, resolved = timed_with_rss([str(BIN / "model-gate"), "resolve", uri, "--json"], env)
            source = json.loads(resolved)["source"]
            download_dir = tmp_path / "download"
            download_s, download_rss, _ = timed_with_rss(
                [str(BIN / "mlflow"), "artifacts", "download", "-u", source, "-d", str(download_dir)], env)
            downloaded = next(download_dir.rglob("MLmodel")).parent
            verify_s, verify_rss, _ = timed_with_rss(
                [str(BIN / "model-gate"), "verify", str(downloaded), "--key",
                 str(tmp_path / "keys" / "model-signing.pub.pem")], env)
            load_code = ("import sys, mlflow.pyfunc, pandas as pd\n"
                         "m = mlflow.pyfunc.load_model(sys.argv[1]); m.predict(pd.DataFrame({'x': [1.0]}))\n")
            load_s, load_rss, _ = timed_with_rss([sys.executable, "-c", load_code, str(downloaded)], env)
        finally:
            server.stop()

    steps = download_s + verify_s + load_s
    print(f"Large signed model: {size / 1024**3:.2f} GiB in {args.files} safetensors files, mlflow server on loopback")
    print(f"  gate: check --dry-run          {gate_s:7.2f} s   peak RSS {gate_rss:6.0f} MiB   "
          f"decision {report['decision']}")
    print(f"    stages (s)                   {json.dumps(report['timings'])}")
    print(f"  anchor: mlflow artifacts download {download_s:5.2f} s   peak RSS {download_rss:6.0f} MiB")
    print(f"  anchor: model-gate verify        {verify_s:5.2f} s   peak RSS {verify_rss:6.0f} MiB")
    print(f"  anchor: import + load + predict  {load_s:5.2f} s   peak RSS {load_rss:6.0f} MiB")
    print(f"  gate / (download + verify + load) = {gate_s:.2f} / {steps:.2f} = {gate_s / steps:.2f}")
    print(f"  download throughput in the gate:  {size / 1024**2 / report['timings']['resolve_download']:.0f} MiB/s; "
          f"signature check: {size / 1024**2 / max(report['timings']['integrity'], 1e-9):.0f} MiB/s")


if __name__ == "__main__":
    main()
