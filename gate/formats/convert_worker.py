"""The child process of `model-gate convert`: the only place pickled weights are loaded.

Run as `python -m gate.formats.convert_worker JOB.json RESULT.json`. The parent has already
scanned every input and set TORCH_FORCE_WEIGHTS_ONLY_LOAD=1; loading uses
torch.load(weights_only=True, mmap=True) so a shard's pages are only read when written,
and each input is released before the next, which bounds memory by the largest shard.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gate.formats.safetensors_io import ALIASES_KEY, write_safetensors

STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model", "module")


class ConvertFailure(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind  # rejected | usage | infra


@dataclass
class ShardPlan:
    file: str
    names: list[str] = field(default_factory=list)
    nbytes: int = 0


def load_input(path: Path) -> dict[str, Any]:
    import torch

    try:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as error:
            if "mmap" not in str(error):  # legacy (non-zip) files cannot be mapped
                raise
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises UnpicklingError, RuntimeError, ... for refused or bad files
        raise ConvertFailure("rejected", f"{path.name}: torch.load(weights_only=True) refused it: "
                                         f"{str(error).splitlines()[0]}") from None
    return tensors_of(obj, path.name)


def tensors_of(obj: Any, label: str) -> dict[str, Any]:
    """The flat name->tensor mapping in a checkpoint (a state dict, or one nested under a usual key)."""
    import torch

    if isinstance(obj, dict):
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return dict(obj)
        for key in STATE_DICT_KEYS:
            inner = obj.get(key)
            if isinstance(inner, dict) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                return dict(inner)
    raise ConvertFailure("usage", f"{label}: no state dict of tensors found (top level or under "
                                  f"{', '.join(STATE_DICT_KEYS)})")


def find_aliases(state: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    """Tensors that are exactly the same view of one storage (tied weights) -> the first name.

    Also returns the names of partial views (sharing storage without being identical), which
    are written as their own copy."""
    first_by_view: dict[tuple, str] = {}
    storage_users: dict[int, list[str]] = {}
    aliases: dict[str, str] = {}
    for name, tensor in state.items():
        storage = tensor.untyped_storage()
        ptr = storage.data_ptr()
        if storage.nbytes() == 0:
            continue
        key = (ptr, tensor.storage_offset(), tuple(tensor.shape), tuple(tensor.stride()), tensor.dtype)
        if key in first_by_view:
            aliases[name] = first_by_view[key]
            continue
        first_by_view[key] = name
        storage_users.setdefault(ptr, []).append(name)
    views = sorted(n for users in storage_users.values() if len(users) > 1 for n in users)
    return aliases, views


def plan_shards(sizes: list[list[tuple[str, int]]], max_shard: int) -> list[list[ShardPlan]]:
    """Split each input's tensors, in order, into shards of at most max_shard bytes (a bigger
    tensor gets a shard of its own). Shards never span inputs, so one input is open at a time."""
    per_input: list[list[ShardPlan]] = []
    for tensors in sizes:
        shards: list[ShardPlan] = []
        for name, nbytes in tensors:
            if not shards or (shards[-1].names and shards[-1].nbytes + nbytes > max_shard):
                shards.append(ShardPlan(""))
            shards[-1].names.append(name)
            shards[-1].nbytes += nbytes
        per_input.append(shards)
    total = sum(len(s) for s in per_input)
    number = 0
    for shards in per_input:
        for shard in shards:
            number += 1
            shard.file = "model.safetensors" if total == 1 else f"model-{number:05d}-of-{total:05d}.safetensors"
    return per_input


def same_bits(a: Any, b: Any) -> bool:
    """Equal dtype, shape and bytes (NaN payloads and -0.0 included, unlike torch.equal)."""
    import torch

    def raw(t: Any) -> Any:
        return t.detach().contiguous().reshape(-1).view(torch.uint8)

    return a.dtype == b.dtype and tuple(a.shape) == tuple(b.shape) and torch.equal(raw(a), raw(b))


def convert(job: dict) -> dict:
    inputs = [Path(p) for p in job["inputs"]]
    out_dir = Path(job["out_dir"])
    started = time.monotonic()
    sizes: list[list[tuple[str, int]]] = []
    aliases: dict[str, str] = {}
    views: list[str] = []
    for path in inputs:  # pass 1: names and sizes only (mmap: no data is read)
        state = load_input(path)
        found, partial = find_aliases(state)
        aliases.update(found)
        views.extend(partial)
        sizes.append([(n, t.numel() * t.element_size()) for n, t in state.items() if n not in found])
        del state
    plan = plan_shards(sizes, int(job["max_shard_size"]))
    weight_map: dict[str, str] = {}
    total = 0
    for path, shards in zip(inputs, plan):  # pass 2: write, one input in memory at a time
        state = load_input(path)
        for shard in shards:
            shard_aliases = {a: t for a, t in aliases.items() if t in shard.names}
            metadata = {"format": "pt"}
            if shard_aliases:
                metadata[ALIASES_KEY] = json.dumps(shard_aliases, sort_keys=True)
            try:
                total += write_safetensors(out_dir / (shard.file + ".partial"),
                                           [(n, state[n]) for n in shard.names], metadata)
            except TypeError as error:
                raise ConvertFailure("usage", str(error)) from None
            weight_map.update({n: shard.file for n in shard.names})
        del state
    files = [s.file for shards in plan for s in shards]
    for name in files:
        (out_dir / (name + ".partial")).rename(out_dir / name)
    if len(files) > 1:
        index = {"metadata": {"total_size": total, ALIASES_KEY: aliases}, "weight_map": weight_map}
        (out_dir / "model.safetensors.index.json").write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    convert_s = time.monotonic() - started
    compared = verify(inputs, out_dir, files, aliases)
    return {"files": files, "tensors": len(weight_map), "aliases": aliases, "cloned_views": sorted(views),
            "bytes": total, "compared": compared, "convert_s": convert_s,
            "verify_s": time.monotonic() - started - convert_s}


def verify(inputs: list[Path], out_dir: Path, files: list[str], aliases: dict[str, str]) -> int:
    """Reload every written file and compare each tensor, aliases included, bit for bit.

    The library reopens each file (header, names, dtypes, shapes); the data is compared by
    streaming the file's bytes against the input tensor's bytes, so no second copy of a
    large tensor is ever held."""
    from safetensors import safe_open

    from gate.formats.safetensors_check import validate_safetensors
    from gate.formats.safetensors_io import tensor_bytes

    entries: dict[str, tuple[str, object, int]] = {}
    for name in files:
        path = out_dir / name
        info = validate_safetensors(path)
        if info.errors:
            raise ConvertFailure("infra", f"{name}: written file fails validation: {info.errors[0]}")
        with safe_open(str(path), framework="pt") as handle:
            for tensor in handle.keys():
                sliced = handle.get_slice(tensor)
                entry = info.tensors[tensor]
                if list(sliced.get_shape()) != list(entry.shape) or sliced.get_dtype() != entry.dtype:
                    raise ConvertFailure("infra", f"{name}: the library reads {tensor!r} differently")
                entries[tensor] = (name, entry, 8 + info.header_length)
    names = _dtype_names()
    compared = 0
    for path in inputs:
        state = load_input(path)
        for name, original in state.items():
            stored = aliases.get(name, name)
            if stored not in entries:
                raise ConvertFailure("infra", f"tensor {name!r} is missing from the output")
            file, entry, data_start = entries[stored]
            if names[original.dtype] != entry.dtype or tuple(original.shape) != entry.shape:
                raise ConvertFailure("infra", f"tensor {name!r} changed dtype or shape in the output")
            if not _same_bytes(out_dir / file, data_start + entry.begin, tensor_bytes(original)):
                raise ConvertFailure("infra", f"tensor {name!r} differs after reloading the output")
            compared += 1
        del state
    return compared


def _dtype_names() -> dict:
    from gate.formats.safetensors_io import dtype_names

    return dtype_names()


def _same_bytes(path: Path, offset: int, expected: memoryview, chunk: int = 1 << 24) -> bool:
    expected = expected.cast("B")
    with path.open("rb") as stream:
        stream.seek(offset)
        for start in range(0, len(expected), chunk):
            part = expected[start:start + chunk]
            if stream.read(len(part)) != part:
                return False
    return True


def peak_rss() -> int:
    """This process's own high-water RSS (VmHWM; ru_maxrss would include the parent's at fork)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def compare_outputs(src_dir: Path, out_dir: Path) -> dict:
    """Load both folders with transformers and run one fixed input through each."""
    import torch
    from transformers import AutoConfig, AutoModel

    try:
        config = AutoConfig.from_pretrained(src_dir)
        AutoModel.from_config(config)  # raises for architectures transformers does not know
    except Exception as error:  # noqa: BLE001 - any failure means "not a transformers folder"
        return {"model_outputs_identical": None, "skipped": f"transformers cannot load it: {error}"[:300]}
    outputs = []
    for folder in (src_dir, out_dir):
        model = AutoModel.from_pretrained(folder, use_safetensors=folder == out_dir)
        model.eval()
        vocab = int(getattr(config, "vocab_size", 100) or 100)
        input_ids = (torch.arange(16).reshape(1, 16) * 7 + 3) % vocab
        with torch.no_grad():
            result = model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids))
        outputs.append(result[0].detach().clone())
        tied = _tied_pairs(model)
        del model
    same = same_bits(outputs[0], outputs[1])
    diff = (outputs[0].double() - outputs[1].double()).abs().max().item()
    if not same:
        raise ConvertFailure("infra", f"model outputs differ after conversion (max abs diff {diff:g})")
    return {"model_outputs_identical": True, "output_shape": list(outputs[0].shape), "max_abs_diff": diff,
            "tied_after_load": tied}


def _tied_pairs(model: Any) -> list[list[str]]:
    by_ptr: dict[int, list[str]] = {}
    for name, tensor in model.state_dict(keep_vars=True).items():
        by_ptr.setdefault(tensor.data_ptr(), []).append(name)
    return [names for names in by_ptr.values() if len(names) > 1]


def main(argv: list[str]) -> int:
    job = json.loads(Path(argv[0]).read_text())
    result_path = Path(argv[1])
    try:
        if job["phase"] == "convert":
            result = convert(job)
        else:
            result = compare_outputs(Path(job["src_dir"]), Path(job["out_dir"]))
        result_path.write_text(json.dumps({"ok": True, **result, "peak_rss": peak_rss()}))
        return 0
    except ConvertFailure as error:
        result_path.write_text(json.dumps({"ok": False, "kind": error.kind, "message": str(error)}))
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
