"""Constants and builders shared by the S3 tests (a module of its own: test files cannot
reliably import from a conftest.py when several test folders each have one)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

MiB = 2**20
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "AKIAMODELGATETEST", "AWS_SECRET_ACCESS_KEY": "model-gate-test-secret-9f1c",
               "AWS_DEFAULT_REGION": "us-east-1"}


def write_model(root: Path, big_size: int = 11 * MiB) -> dict[str, str]:
    """A small sentence-transformers-like tree (with a 1_Pooling/ subfolder) and one file large
    enough to need a multipart upload. Returns {relative path: sha256 hex} computed here."""
    files = {
        "config.json": b'{"hidden_size": 8}\n',
        "1_Pooling/config.json": b'{"pooling_mode_mean_tokens": true}\n',
        "tokenizer/vocab.txt": b"[PAD]\n[UNK]\nhello\nworld\n",
        "empty.txt": b"",
        "model.safetensors": os.urandom(big_size),
    }
    for relative, data in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return {relative: hashlib.sha256(data).hexdigest() for relative, data in files.items()}
