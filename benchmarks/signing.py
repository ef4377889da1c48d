"""Benchmark: model-gate verify vs `model_signing verify key` vs raw hashlib, on a 2 GiB folder.

Prints numbers; asserts nothing. Usage: python benchmarks/signing.py [--gib 2] [--files 6]
Each tool runs in its own process so peak RSS is the tool's own (ru_maxrss of the child).
The folder is written once, so both verifiers read it from the page cache.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path


def measure_peak(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and this child's own peak RSS in MiB (wait4 gives per-process usage)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stdout.read().decode()}{proc.stderr.read().decode()}")
    return seconds, usage.ru_maxrss / 1024


def raw_hashlib_throughput(total: int, threads: int) -> float:
    """Bytes/s of single-pass SHA-256 over in-memory data, one stream per thread (GIL released)."""
    block = os.urandom(8 * 1024 * 1024)
    per_thread = total // threads

    def work() -> None:
        h = hashlib.sha256()
        for _ in range(per_thread // len(block)):
            h.update(block)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    start = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return (per_thread // len(block)) * len(block) * threads / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gib", type=float, default=2.0)
    parser.add_argument("--files", type=int, default=6)
    parser.add_argument("--repeat", type=int, default=2, help="runs per tool; the best is reported")
    args = parser.parse_args()
    total = int(args.gib * 1024**3)
    cores = len(os.sched_getaffinity(0))
    bin_dir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory(prefix="gate-sign-bench-") as tmp:
        root = Path(tmp)
        model = root / "model"
        model.mkdir()
        chunk = os.urandom(16 * 1024 * 1024)
        sizes = [total // args.files] * args.files
        for i, size in enumerate(sizes):
            with open(model / f"shard-{i:02d}.bin", "wb") as handle:
                for _ in range(size // len(chunk)):
                    handle.write(chunk)
                handle.write(chunk[: size % len(chunk)])
        (model / "config.json").write_text('{"bench": true}\n')
        keys = root / "keys"
        subprocess.run([bin_dir / "model-gate", "keygen", "--out-dir", keys], check=True, capture_output=True)
        priv, pub = keys / "model-signing.pem", keys / "model-signing.pub.pem"
        sign_s, sign_rss = measure_peak([str(bin_dir / "model-gate"), "sign", str(model), "--key", str(priv)])
        sig = model / "model.sig"
        gate_cmd = [str(bin_dir / "model-gate"), "verify", str(model), "--key", str(pub)]
        ms_cmd = [sys.executable, "-m", "model_signing", "verify", "key", str(model), "--signature", str(sig),
                  "--public_key", str(pub)]
        gate_runs = []
        ms_runs = []
        for _ in range(args.repeat):  # interleaved so both see the same cache state
            gate_runs.append(measure_peak(gate_cmd))
            ms_runs.append(measure_peak(ms_cmd))
        gate_s, gate_rss = min(gate_runs)
        ms_s, ms_rss = min(ms_runs)
        raw = raw_hashlib_throughput(min(total, 2 * 1024**3), cores)
        size = sum(p.stat().st_size for p in model.iterdir() if p.name != "model.sig")
        gate_tp = size / gate_s
        print(f"model: {size / 1024**3:.2f} GiB in {args.files + 1} files; {cores} cores; best of {args.repeat}")
        print(f"model-gate sign             : {sign_s:7.2f} s  peak RSS {sign_rss:6.1f} MiB")
        print(f"model-gate verify           : {gate_s:7.2f} s  {gate_tp / 1e6:8.1f} MB/s  peak RSS {gate_rss:6.1f} MiB")
        print(f"model_signing verify key    : {ms_s:7.2f} s  {size / ms_s / 1e6:8.1f} MB/s  peak RSS {ms_rss:6.1f} MiB")
        print(f"raw hashlib sha256, {cores} threads: {raw / 1e6:8.1f} MB/s (in memory, single pass)")
        print(f"ratio gate/model_signing time: {gate_s / ms_s:.3f}  (goal <= 1.0)")
        print(f"gate throughput / raw hashlib: {gate_tp / raw:.1%}  (goal >= 80%)")
        shutil.rmtree(model)


if __name__ == "__main__":
    main()
