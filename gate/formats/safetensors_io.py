"""Write and read safetensors with torch, one tensor at a time, keeping tied weights tied.

Writing streams each tensor's bytes straight to the file (safetensors.torch.save_file
first copies every tensor into one buffer, doubling memory). Tensors that are the same
view of the same storage (tied embeddings) are written once; the others' names go into
`__metadata__["model_gate.aliases"]` as JSON {alias: kept name}, and load_state_dict()
makes them the same tensor again. Import this only where torch may be imported.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ALIASES_KEY = "model_gate.aliases"
ALIGN = 8  # the header is padded with spaces so the data starts 8-byte aligned


def dtype_names() -> dict[Any, str]:
    import torch

    names = {
        torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
        torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
        torch.bool: "BOOL", torch.complex64: "C64", torch.float8_e4m3fn: "F8_E4M3",
        torch.float8_e5m2: "F8_E5M2",
    }
    for attr, name in (("uint16", "U16"), ("uint32", "U32"), ("uint64", "U64"), ("float8_e8m0fnu", "F8_E8M0")):
        if hasattr(torch, attr):
            names[getattr(torch, attr)] = name
    return names


def tensor_bytes(tensor: Any) -> memoryview:
    """The tensor's elements in row-major order as raw bytes (a view when already contiguous)."""
    import torch

    flat = tensor.detach().contiguous().reshape(-1)
    return memoryview(flat.view(torch.uint8).numpy())


def write_safetensors(path: Path, tensors: list[tuple[str, Any]], metadata: dict[str, str]) -> int:
    """Write tensors (name, tensor) in order; returns the data size in bytes."""
    names = dtype_names()
    header: dict[str, Any] = {"__metadata__": metadata} if metadata else {}
    offset = 0
    for name, tensor in tensors:
        if tensor.dtype not in names:
            raise TypeError(f"tensor {name!r} has dtype {tensor.dtype}, which safetensors cannot store")
        if tensor.layout.__repr__() != "torch.strided":
            raise TypeError(f"tensor {name!r} is {tensor.layout}; only dense tensors can be stored")
        size = tensor.numel() * tensor.element_size()
        header[name] = {"dtype": names[tensor.dtype], "shape": list(tensor.shape),
                        "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    raw += b" " * (-(8 + len(raw)) % ALIGN)
    with path.open("wb") as out:
        out.write(len(raw).to_bytes(8, "little"))
        out.write(raw)
        for _, tensor in tensors:
            out.write(tensor_bytes(tensor))
    return offset


def load_state_dict(path: Path) -> dict[str, Any]:
    """Load a .safetensors file, or a folder's shards via its index, restoring tied aliases."""
    from safetensors import safe_open

    if path.is_dir():
        indexes = sorted(path.glob("*.safetensors.index.json"))
        if indexes:
            weight_map = json.loads(indexes[0].read_text())["weight_map"]
            files = [path / name for name in dict.fromkeys(weight_map.values())]
        else:
            files = sorted(path.glob("*.safetensors"))
    else:
        files = [path]
    state: dict[str, Any] = {}
    aliases: dict[str, str] = {}
    for file in files:
        with safe_open(str(file), framework="pt") as handle:
            aliases.update(json.loads((handle.metadata() or {}).get(ALIASES_KEY, "{}")))
            for name in handle.keys():
                state[name] = handle.get_tensor(name)
    for alias, target in aliases.items():
        state[alias] = state[target]
    return state
