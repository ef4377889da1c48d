"""`model-gate convert`: pickle checkpoints to safetensors, loaded only in a child process
and only after the static scan passed.

This module decides what to convert and where, checks that torch can be trusted to load
with weights_only, scans, and runs gate/formats/convert_worker.py in a fresh interpreter.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from gate.errors import InfraError, RejectedError, UsageError
from gate.formats.decide import judge
from gate.formats.detect import detect
from gate.formats.inspect import inspect_file
from gate.formats.policy import FormatsPolicy
from gate.formats.shards import read_index

# torch.load(weights_only=True) could still run code before 2.6.0 (CVE-2025-32434,
# GHSA-53q9-r3pm-6pq6) and could corrupt memory before 2.10.0 (CVE-2026-24747,
# GHSA-63cw-57p8-fm3p). 2.10.0 is the first release with neither known bypass.
MIN_TORCH = (2, 10, 0)
CHECKPOINT_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")
PICKLE_FORMATS = ("pickle", "pytorch-zip")
UNSAFE_ENV = "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?\s*$", re.IGNORECASE)
_UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
          "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


@dataclass
class ConvertPlan:
    inputs: list[Path]
    out_dir: Path
    src_dir: Path | None  # the model folder, when converting one
    copy: list[Path] = field(default_factory=list)  # config, tokenizer, ... (relative to src_dir)
    skipped: list[str] = field(default_factory=list)  # other pickles, not converted nor copied


def parse_size(text: str) -> int:
    """'5GB' (10^9), '500MiB' (2^20), '1024' (bytes)."""
    match = _SIZE.match(text)
    if not match:
        raise UsageError(f"--max-shard-size: cannot read {text!r}; use e.g. 5GB, 500MB or 2GiB")
    value = float(match.group(1)) * _UNITS[(match.group(2) or "B").upper()]
    if value < 1:
        raise UsageError(f"--max-shard-size: {text!r} is not a positive size")
    return int(value)


def torch_version_tuple(version: str) -> tuple[int, int, int]:
    numbers = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", version)
    if not numbers:
        raise UsageError(f"cannot read the installed torch version {version!r}")
    return int(numbers.group(1)), int(numbers.group(2)), int(numbers.group(3) or 0)


def unsafe_loader_reason(torch_version: str, env: dict[str, str]) -> str | None:
    """Why torch.load(weights_only=True) cannot be trusted here, or None. Pure."""
    forced = env.get(UNSAFE_ENV, "")
    if forced not in ("", "0"):
        return f"{UNSAFE_ENV}={forced} forces unsafe pickle loading; unset it to convert"
    if torch_version_tuple(torch_version) < MIN_TORCH:
        return (f"torch {torch_version} has known torch.load(weights_only=True) bypasses; "
                f"upgrade to {'.'.join(map(str, MIN_TORCH))} or later")
    return None


def check_loader_safe(env: dict[str, str]) -> str:
    """Refuse when weights_only could be bypassed; returns the torch version."""
    try:
        version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        raise UsageError("converting needs torch; install model-gate[torch]") from None
    reason = unsafe_loader_reason(version, env)
    if reason:
        raise UsageError(reason)
    return version


def plan(src: Path, out: Path | None) -> ConvertPlan:
    if not src.exists():
        raise UsageError(f"{src}: no such file or folder")
    if src.is_file():
        fmt = detect(src).format
        if fmt not in PICKLE_FORMATS:
            raise UsageError(f"{src}: is {fmt}, not a pickle or PyTorch checkpoint")
        return ConvertPlan([src], out or src.parent, None)
    files = _folder_files(src)
    inputs = _folder_inputs(src)
    names = {p.name for p in inputs} | {p.name for p in src.glob("*.bin.index.json")}
    result = ConvertPlan(inputs, out or src.with_name(src.name + "-safetensors"), src)
    for rel in files:
        if len(rel.parts) == 1 and rel.name in names:
            continue
        if detect(src / rel).format in PICKLE_FORMATS:
            result.skipped.append(rel.as_posix())
        else:
            result.copy.append(rel)
    return result


def _folder_files(src: Path) -> list[Path]:
    """Every file under src, relative to it, in a stable order; refuses what must not be copied.

    A symlink to a file inside the folder is followed (its content is part of the model). A
    symlink that leads outside (its target would land in the output, e.g. /etc/passwd), a
    symlinked folder, a dangling link and a special file (a FIFO would block the copy) are
    refused, all of them named, before anything is written.
    """
    root = src.resolve()
    files: list[Path] = []
    problems: list[str] = []
    for folder, dirs, names in os.walk(src):  # does not descend into symlinked folders
        dirs.sort()
        for name in dirs:
            problem = _unfit(Path(folder) / name, src, root)
            if problem:
                problems.append(problem)
        for name in sorted(names):
            path = Path(folder) / name
            problem = _unfit(path, src, root)
            if problem:
                problems.append(problem)
            else:
                files.append(path.relative_to(src))
    if problems:
        raise UsageError(f"cannot convert {src}: " + "; ".join(problems))
    return sorted(files, key=Path.as_posix)


def _unfit(path: Path, src: Path, root: Path) -> str | None:
    rel = path.relative_to(src)
    if path.is_symlink():
        link = os.readlink(path)
        target = Path(os.path.realpath(path))
        if not target.is_relative_to(root):
            return f"symlink outside the model folder: {rel} -> {link}"
        if target.is_dir():
            return f"symlinked folder: {rel} -> {link} (not followed)"
        if not target.exists():
            return f"dangling symlink: {rel} -> {link}"
    if not path.is_dir() and not path.is_file():
        return f"special file: {rel} (not a regular file)"
    return None


def _folder_inputs(src: Path) -> list[Path]:
    indexes = sorted(src.glob("*.bin.index.json"))
    if len(indexes) > 1:
        raise UsageError(f"{src}: several .bin index files ({', '.join(p.name for p in indexes)}); convert one")
    if indexes:
        check = read_index(indexes[0])
        if check.errors:
            raise UsageError(f"{indexes[0]}: {check.errors[0]}")
        missing = [s for s in check.shards if not (src / s).is_file()]
        if missing:
            raise UsageError(f"{indexes[0]}: shard {missing[0]!r} does not exist")
        return [src / s for s in check.shards]
    if (src / "pytorch_model.bin").is_file():
        return [src / "pytorch_model.bin"]
    candidates = [p for p in sorted(src.iterdir()) if p.is_file() and p.suffix in CHECKPOINT_SUFFIXES
                  and detect(p).format in PICKLE_FORMATS]
    if len(candidates) != 1:
        found = ", ".join(p.name for p in candidates) or "none"
        raise UsageError(f"{src}: expected pytorch_model.bin, a .bin index or one checkpoint file; found {found}")
    return candidates


def scan_inputs(inputs: list[Path], policy: FormatsPolicy) -> None:
    """Every input must pass the static scan before anything loads it."""
    problems: list[str] = []
    for path in inputs:
        verdict = judge(inspect_file(path, path.name, None, allow_globals=tuple(policy.allow_globals)), policy)
        problems.extend(verdict.problems)
    if problems:
        raise RejectedError(f"refusing to load: {problems[0]}"
                            + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != UNSAFE_ENV}
    env.update(TORCH_FORCE_WEIGHTS_ONLY_LOAD="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return env


def run_worker(job: dict) -> tuple[dict, int]:
    """Run one worker phase in a fresh interpreter; returns its result and peak RSS in bytes."""
    with tempfile.TemporaryDirectory(prefix="model-gate-convert-") as tmp:
        job_path, result_path = Path(tmp) / "job.json", Path(tmp) / "result.json"
        job_path.write_text(json.dumps(job))
        proc = subprocess.Popen([sys.executable, "-m", "gate.formats.convert_worker", str(job_path),
                                 str(result_path)], env=_child_env(), stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        stderr = proc.stderr.read().decode("utf-8", "replace") if proc.stderr else ""
        proc.wait()
        result = json.loads(result_path.read_text()) if result_path.exists() else None
    if result is None:
        last = stderr.strip().splitlines()[-1] if stderr.strip() else f"exit status {proc.returncode}"
        raise InfraError(f"the conversion process failed: {last}")
    if not result["ok"]:
        error = {"rejected": RejectedError, "usage": UsageError}.get(result["kind"], InfraError)
        raise error(result["message"])
    return result, int(result.pop("peak_rss", 0))


def convert(src: Path, out: Path | None = None, *, max_shard_size: int = 5 * 10**9,
            policy: FormatsPolicy | None = None, compare_model: bool = True) -> dict:
    torch_version = check_loader_safe(dict(os.environ))
    the_plan = plan(src, out)
    scan_inputs(the_plan.inputs, policy or FormatsPolicy())
    out_dir = the_plan.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    clash = [p.name for p in out_dir.glob("model*.safetensors*")]
    if src.is_file():
        clash = [p.name for p in (out_dir / "model.safetensors", out_dir / "model.safetensors.index.json")
                 if p.exists()]
    if clash:
        raise UsageError(f"{out_dir}: already holds {clash[0]}; choose another --out")
    result, peak = run_worker({"phase": "convert", "inputs": [str(p) for p in the_plan.inputs],
                               "out_dir": str(out_dir), "max_shard_size": max_shard_size})
    result.pop("ok")
    result.update(torch=torch_version, out_dir=str(out_dir), convert_peak_rss=peak,
                  inputs=[str(p) for p in the_plan.inputs], skipped=the_plan.skipped,
                  largest_input=max(p.stat().st_size for p in the_plan.inputs))
    if the_plan.src_dir is not None:
        for rel in the_plan.copy:
            (out_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(the_plan.src_dir / rel, out_dir / rel)
        result["copied"] = [rel.as_posix() for rel in the_plan.copy]
        if compare_model and (the_plan.src_dir / "config.json").is_file():
            outputs, peak = run_worker({"phase": "outputs", "src_dir": str(the_plan.src_dir),
                                        "out_dir": str(out_dir)})
            outputs.pop("ok")
            result["model_check"] = {**outputs, "peak_rss": peak}
    return result
