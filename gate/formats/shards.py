"""Sharded checkpoints: `<name>.safetensors.index.json` (and `pytorch_model.bin.index.json`).

An index is {"metadata": {...}, "weight_map": {tensor name: shard file name}}. Loaders
trust it blindly, so the gate checks that it tells the truth.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

INDEX_SUFFIXES = (".safetensors.index.json", ".bin.index.json")


@dataclass
class IndexCheck:
    weight_map: dict[str, str] = field(default_factory=dict)
    shards: list[str] = field(default_factory=list)  # shard names, in first-use order
    errors: list[str] = field(default_factory=list)
    unreferenced: list[str] = field(default_factory=list)


def is_index(path: Path) -> bool:
    return path.name.endswith(INDEX_SUFFIXES)


def read_index(path: Path) -> IndexCheck:
    check = IndexCheck()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        check.errors.append(f"index is not valid JSON: {error}")
        return check
    weight_map = data.get("weight_map") if isinstance(data, dict) else None
    if not isinstance(weight_map, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in weight_map.items()
    ):
        check.errors.append("index has no weight_map mapping tensor names to shard file names")
        return check
    for shard in dict.fromkeys(weight_map.values()):
        pure = PurePosixPath(shard)
        if pure.is_absolute() or ".." in pure.parts or "\\" in shard or len(pure.parts) != 1:
            check.errors.append(f"shard name {shard!r} is not a plain file name next to the index")
        else:
            check.shards.append(shard)
    check.weight_map = weight_map
    return check


def validate_safetensors_index(
    index_path: Path, tensor_names: Callable[[Path], set[str] | None]
) -> IndexCheck:
    """Every shard exists, every tensor is in the shard the index names, and nothing is left over.

    tensor_names(shard) returns the tensor names in a shard's header, or None when the
    shard is itself invalid (reported on its own).
    """
    check = read_index(index_path)
    if check.errors:
        return check
    folder = index_path.parent
    in_shard: dict[str, set[str] | None] = {}
    for shard in check.shards:
        shard_path = folder / shard
        if not shard_path.is_file():
            check.errors.append(f"shard {shard!r} named in the index does not exist")
            continue
        in_shard[shard] = tensor_names(shard_path)
    for tensor, shard in check.weight_map.items():
        names = in_shard.get(shard)
        if names is not None and tensor not in names:
            check.errors.append(f"tensor {tensor!r} is not in shard {shard!r} as the index says")
    for shard, names in in_shard.items():
        for extra in sorted((names or set()) - {t for t, s in check.weight_map.items() if s == shard}):
            check.errors.append(f"tensor {extra!r} in shard {shard!r} is missing from the index")
    suffix = ".safetensors" if index_path.name.endswith(".safetensors.index.json") else ".bin"
    referenced = set(check.shards)
    check.unreferenced = sorted(
        p.name for p in folder.iterdir()
        if p.is_file() and p.name.endswith(suffix) and p.name not in referenced
        and p.name != index_path.name
    )
    return check
