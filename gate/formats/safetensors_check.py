"""Safetensors validation from the header alone (never the tensor data).

The format (https://github.com/huggingface/safetensors): 8 bytes little-endian header
length N, N bytes of JSON, then the data. Every entry but `__metadata__` is a tensor
{"dtype", "shape", "data_offsets": [begin, end]} relative to the start of the data.
These checks are stricter than the library's, which accepts some of these files.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_MAX_HEADER = 100 * 1024 * 1024  # the same cap the reference implementation uses
# Bits per element of every dtype the format defines.
DTYPE_BITS = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8, "I16": 16, "U16": 16,
    "F16": 16, "BF16": 16, "I32": 32, "U32": 32, "F32": 32, "F64": 64, "I64": 64, "U64": 64,
    "C64": 64, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
}


@dataclass(frozen=True)
class TensorEntry:
    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int


@dataclass
class SafetensorsInfo:
    tensors: dict[str, TensorEntry] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    header_length: int = 0
    data_length: int = 0
    errors: list[str] = field(default_factory=list)


class _Duplicate(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _Duplicate(key)
        seen[key] = value
    return seen


def _reject_constant(name: str) -> None:
    raise ValueError(f"non-standard JSON constant {name}")


def parse_header(raw: bytes) -> dict[str, Any]:
    """Strict JSON: UTF-8, no duplicate keys, no NaN/Infinity, an object at the top."""
    text = raw.decode("utf-8")  # UnicodeDecodeError is a ValueError
    header = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    if not isinstance(header, dict):
        raise ValueError(f"the header is a JSON {type(header).__name__}, not an object")
    return header


def validate_safetensors(path: Path, max_header: int = DEFAULT_MAX_HEADER) -> SafetensorsInfo:
    info = SafetensorsInfo()
    size = path.stat().st_size
    if size < 8:
        info.errors.append(f"file is {size} bytes, shorter than the 8-byte header length")
        return info
    with path.open("rb") as stream:
        first8 = stream.read(8)
        length = int.from_bytes(first8, "little")
        info.header_length = length
        if length > max_header:
            text = first8.isascii() and first8.decode().isprintable()
            info.errors.append(f"header length {length} exceeds the cap of {max_header} bytes"
                               + (f" (the file starts with the text {first8.decode()!r}: not safetensors)"
                                  if text else ""))
            return info
        if length < 2:
            info.errors.append(f"header length {length} is too small for a JSON object (`{{}}` takes 2 bytes)")
            return info
        if 8 + length > size:
            info.errors.append(f"header length {length} runs past the end of the {size}-byte file")
            return info
        raw = stream.read(length)
    info.data_length = size - 8 - length
    if not raw.startswith(b"{"):
        info.errors.append(f"header must start with '{{' (a JSON object), it starts with {raw[:4]!r}"
                           + (" (a UTF-8 byte order mark)" if raw.startswith(b"\xef\xbb\xbf") else ""))
        return info
    try:
        header = parse_header(raw)
    except _Duplicate as dup:
        info.errors.append(f"duplicate key {str(dup)!r} in the header")
        return info
    except ValueError as error:
        info.errors.append(f"header is not valid JSON: {str(error).splitlines()[0]}")
        return info
    metadata = header.pop("__metadata__", None)
    if metadata is not None:
        if not isinstance(metadata, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
        ):
            info.errors.append("__metadata__ must map strings to strings")
        else:
            info.metadata = metadata
    for name, entry in header.items():
        problem = _check_entry(name, entry, info)
        if problem:
            info.errors.append(problem)
    if not info.errors:
        info.errors.extend(_check_layout(info.tensors, info.data_length))
    return info


def _check_entry(name: str, entry: Any, info: SafetensorsInfo) -> str | None:
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        return f"tensor {name!r}: entry must have exactly dtype, shape and data_offsets"
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if dtype not in DTYPE_BITS:
        return f"tensor {name!r}: unknown dtype {dtype!r}"
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                              for d in shape):
        return f"tensor {name!r}: shape must be a list of non-negative integers, got {shape!r}"
    if (not isinstance(offsets, list) or len(offsets) != 2
            or not all(isinstance(o, int) and not isinstance(o, bool) and o >= 0 for o in offsets)):
        return f"tensor {name!r}: data_offsets must be two non-negative integers, got {offsets!r}"
    begin, end = offsets
    if end < begin:
        return f"tensor {name!r}: data_offsets end {end} is before begin {begin}"
    bits = math.prod(shape) * DTYPE_BITS[dtype]
    if bits % 8:
        return f"tensor {name!r}: {math.prod(shape)} elements of {dtype} do not fill whole bytes"
    if bits // 8 != end - begin:
        return (f"tensor {name!r}: shape {shape} of {dtype} needs {bits // 8} bytes, "
                f"data_offsets span {end - begin}")
    info.tensors[name] = TensorEntry(dtype, tuple(shape), begin, end)
    return None


def _check_layout(tensors: dict[str, TensorEntry], data_length: int) -> list[str]:
    """Offsets start at 0, follow each other with no gap or overlap, and end at the file's end."""
    position = 0
    previous = None
    for name, entry in sorted(tensors.items(), key=lambda item: (item[1].begin, item[1].end)):
        if entry.begin < position:
            return [f"tensor {name!r} overlaps tensor {previous!r} (begins at {entry.begin}, before {position})"]
        if entry.begin > position:
            where = f"after tensor {previous!r}" if previous else "at the start of the data"
            return [f"gap of {entry.begin - position} bytes {where} (tensor {name!r} begins at {entry.begin})"]
        position, previous = entry.end, name
    if position < data_length:
        return [f"{data_length - position} trailing bytes after the last tensor"]
    if position > data_length:
        return [f"tensors need {position} bytes of data, the file holds {data_length}"]
    return []
