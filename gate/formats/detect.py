"""What a file really is, from its bytes (the name is never trusted).

Reads at most a small head of the file, except for zip archives (whose central
directory is read) and headerless pickles (protocols 0 and 1, which are only
recognised by walking their opcodes to STOP).
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

from gate.formats.pickle_scan import scan_stream

HEAD_BYTES = 4096
LFS_PREFIX = b"version https://git-lfs.github.com/spec/v1\n"
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
NUMPY_MAGIC = b"\x93NUMPY"
# Every format name the detector can return.
FORMATS = ("safetensors", "pytorch-zip", "pickle", "numpy", "numpy-npz", "onnx", "gguf", "hdf5", "zip",
           "compressed", "git-lfs-pointer", "text", "empty", "unknown")
# Formats that hold weights (the `allowed` policy list is about these; text never counts).
WEIGHT_FORMATS = ("safetensors", "pytorch-zip", "pickle", "numpy", "numpy-npz", "onnx", "gguf", "hdf5", "zip",
                  "compressed", "unknown")
# The detail of a file that only its name calls safetensors: validation then says what is wrong.
NAMED_SAFETENSORS = "named .safetensors, content not recognised"
UTF8_BOM = b"\xef\xbb\xbf"
# Opcodes a protocol 0/1 pickle can start with (no PROTO header before protocol 2).
_PICKLE01_FIRST = set(b"(}])cNIFLSVGJKMUTX\x88\x89")
_ONNX_NEXT_TAGS = {0x12, 0x1A, 0x22, 0x28, 0x32, 0x3A, 0x42, 0x52, 0x72, 0x7A}


@dataclass(frozen=True)
class Detection:
    format: str
    detail: str = ""


def detect(path: Path) -> Detection:
    size = path.stat().st_size
    # A file that claims to be safetensors and is not another known format is validated as one,
    # so a truncated or damaged file is invalid, never "unknown" or "empty".
    named = path.name.lower().endswith(".safetensors")
    if size == 0:
        return Detection("safetensors", NAMED_SAFETENSORS) if named else Detection("empty")
    with path.open("rb") as stream:
        head = stream.read(HEAD_BYTES)
    if head.startswith(LFS_PREFIX):
        return Detection("git-lfs-pointer", _lfs_detail(head))
    if _looks_like_safetensors(head):
        return Detection("safetensors")
    if head.startswith(NUMPY_MAGIC):
        return Detection("numpy", f"npy version {head[6]}.{head[7]}" if len(head) > 7 else "")
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return _detect_zip(path)
    if head.startswith(b"GGUF"):
        return Detection("gguf", f"version {int.from_bytes(head[4:8], 'little')}" if len(head) >= 8 else "")
    if head.startswith(HDF5_MAGIC):
        return Detection("hdf5")
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return Detection("pickle", f"protocol {head[1]}")
    if head[0] in _PICKLE01_FIRST and _is_headerless_pickle(path):
        return Detection("pickle", "protocol 0/1")
    if _looks_like_onnx(head):
        return Detection("onnx", "protobuf ModelProto")
    compression = _compression(head)
    if compression:
        return Detection("compressed", compression)
    if named:
        return Detection("safetensors", NAMED_SAFETENSORS)
    if _is_text(head):
        return Detection("text")
    return Detection("unknown")


def _lfs_detail(head: bytes) -> str:
    fields = dict(line.split(" ", 1) for line in head.decode("utf-8", "replace").splitlines() if " " in line)
    return f"pointer to {fields.get('oid', '?')} ({fields.get('size', '?')} bytes)"


def _looks_like_safetensors(head: bytes) -> bool:
    # 8-byte little-endian header length, then a JSON object. The length's upper bytes are
    # zero for any sane header, which keeps text files that contain "{" at byte 8 out. A BOM or
    # blanks before the "{" (invalid, the header must start with it) still mark a safetensors file.
    if len(head) < 9:
        return False
    length = int.from_bytes(head[:8], "little")
    start = head[8:].removeprefix(UTF8_BOM).lstrip(b" \t\r\n")
    return length < 1 << 40 and start[:1] == b"{"


def _detect_zip(path: Path) -> Detection:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError) as error:
        return Detection("zip", f"unreadable zip: {error}")
    if any(name == "data.pkl" or name.endswith("/data.pkl") for name in names):
        return Detection("pytorch-zip", f"{len(names)} entries")
    if names and all(name.endswith(".npy") for name in names):
        return Detection("numpy-npz", f"{len(names)} arrays")
    return Detection("zip", f"{len(names)} entries")


def _is_headerless_pickle(path: Path) -> bool:
    with path.open("rb") as stream:
        scan = scan_stream(stream)
    return scan.error is None and scan.pickles >= 1


def _looks_like_onnx(head: bytes) -> bool:
    # ModelProto starts with field 1 (ir_version, varint): tag 0x08, a small version, then another field.
    return len(head) >= 3 and head[0] == 0x08 and 1 <= head[1] <= 30 and head[2] in _ONNX_NEXT_TAGS


def _compression(head: bytes) -> str | None:
    """The compressed streams joblib.load opens transparently (joblib/compressor.py prefixes),
    with enough of each header checked that text does not match."""
    if (len(head) >= 2 and head[0] == 0x78 and head[1] & 0x20 == 0 and (head[0] << 8 | head[1]) % 31 == 0
            and not _is_text(head)):
        return "zlib stream"
    if head.startswith(b"\x1f\x8b\x08"):
        return "gzip stream"
    if head[:3] == b"BZh" and head[4:10] == b"\x31\x41\x59\x26\x53\x59":
        return "bz2 stream"
    if head.startswith(b"\xfd7zXZ\x00"):
        return "xz stream"
    if head.startswith(b"\x04\x22\x4d\x18"):
        return "lz4 frame"
    if head.startswith(b"\x5d\x00") and not _is_text(head):
        return "lzma stream"
    if head.startswith(b"ZF0x") and not _is_text(head):
        return "zlib stream (joblib < 0.10)"
    return None


def _is_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    for cut in range(4):  # the head may end inside a multi-byte character
        try:
            head[: len(head) - cut].decode("utf-8")
            return True
        except UnicodeDecodeError:
            continue
    return False
