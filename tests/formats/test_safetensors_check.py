import json
import os
import struct

import pytest
import torch
from safetensors.torch import save_file

from gate.formats.safetensors_check import validate_safetensors
from tests.formats.conftest import f32, safetensors_bytes


def test_a_file_written_by_the_library_is_valid(tmp_path):
    save_file({"a": torch.ones(2, 3), "b": torch.zeros(4, dtype=torch.bfloat16), "c": torch.tensor(True)},
              tmp_path / "m.safetensors", metadata={"format": "pt"})
    info = validate_safetensors(tmp_path / "m.safetensors")
    assert info.errors == []
    assert info.tensors["a"].shape == (2, 3) and info.tensors["b"].dtype == "BF16"
    assert info.metadata == {"format": "pt"}


@pytest.mark.parametrize("content,expected", [
    (safetensors_bytes(f32([("a", [2], 0, 8)]), bytes(8), length=10**6), "runs past the end"),
    (safetensors_bytes(f32([("a", [2], 0, 8)]), bytes(8), length=200 * 2**20), "exceeds the cap"),
    (safetensors_bytes(b'{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},'
                       b' "a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}', bytes(8)),
     "duplicate key 'a'"),
    (safetensors_bytes({"a": {"dtype": "F31", "shape": [2], "data_offsets": [0, 8]}}, bytes(8)),
     "unknown dtype 'F31'"),
    (safetensors_bytes(f32([("a", [3], 0, 8)]), bytes(8)), "needs 12 bytes, data_offsets span 8"),
    (safetensors_bytes(f32([("a", [2], 4, 12)]), bytes(12)), "gap of 4 bytes at the start"),
    (safetensors_bytes(f32([("a", [2], 0, 8), ("b", [2], 4, 12)]), bytes(12)), "overlaps tensor 'a'"),
    (safetensors_bytes(f32([("a", [2], 0, 8), ("b", [1], 12, 16)]), bytes(16)), "gap of 4 bytes after tensor 'a'"),
    (safetensors_bytes(f32([("a", [2], 0, 8)]), bytes(9)), "1 trailing bytes"),
    (safetensors_bytes(f32([("a", [4], 0, 16)]), bytes(8)), "the file holds 8"),
    (safetensors_bytes({"__metadata__": {"step": 3}, **f32([("a", [2], 0, 8)])}, bytes(8)),
     "__metadata__ must map strings to strings"),
    (safetensors_bytes(b'{"a": {"dtype": "F32", "shape": [NaN], "data_offsets": [0, 8]}}', bytes(8)),
     "non-standard JSON constant NaN"),
    (safetensors_bytes(b'[1, 2]'), "header must start with '{' (a JSON object), it starts with b'[1, '"),
    (safetensors_bytes({"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, bytes(8)),
     "non-negative integers"),
    (safetensors_bytes({"a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}}, bytes(8)),
     "before begin"),
    (safetensors_bytes({"a": {"dtype": "F32", "shape": [2]}}, bytes(8)), "exactly dtype, shape and data_offsets"),
    (safetensors_bytes(b'{"a": "\xff"}'), "not valid JSON"),
])
def test_each_rule_rejects_its_crafted_file(tmp_path, content, expected):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    errors = validate_safetensors(path).errors
    assert len(errors) == 1 and expected in errors[0], errors


def test_the_library_accepts_a_duplicate_name_that_we_reject(tmp_path):
    from safetensors import safe_open

    path = tmp_path / "dup.safetensors"
    path.write_bytes(safetensors_bytes(
        b'{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},'
        b' "a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}', bytes(4)))
    try:
        with safe_open(str(path), framework="pt") as handle:
            accepted = list(handle.keys()) == ["a"]
    except Exception:  # a future library version may refuse it too
        accepted = False
    errors = validate_safetensors(path).errors
    assert errors and "duplicate" in errors[0]
    print("library accepts duplicate names:", accepted)


def test_sub_byte_dtypes_must_fill_whole_bytes(tmp_path):
    ok = tmp_path / "ok.safetensors"
    ok.write_bytes(safetensors_bytes({"q": {"dtype": "F4", "shape": [4], "data_offsets": [0, 2]}}, bytes(2)))
    assert validate_safetensors(ok).errors == []
    odd = tmp_path / "odd.safetensors"
    odd.write_bytes(safetensors_bytes({"q": {"dtype": "F4", "shape": [3], "data_offsets": [0, 2]}}, bytes(2)))
    assert "do not fill whole bytes" in validate_safetensors(odd).errors[0]


def _bytes_read() -> int:
    with open("/proc/self/io") as stats:
        return int(next(line for line in stats if line.startswith("rchar:")).split()[1])


def test_validating_a_10_gb_file_reads_only_its_header(tmp_path):
    size = 10 * 2**30
    header = json.dumps({"big": {"dtype": "U8", "shape": [size], "data_offsets": [0, size]}}).encode()
    path = tmp_path / "big.safetensors"
    path.write_bytes(safetensors_bytes(header))
    os.truncate(path, 8 + len(header) + size)  # sparse: no disk used
    before = _bytes_read()
    info = validate_safetensors(path)
    read = _bytes_read() - before
    assert info.errors == [] and info.data_length == size
    assert read < 64 * 1024, f"read {read} bytes"


# ------------------------------------------------ damaged files are invalid, never "unknown ok"

def _damaged_files(folder):
    """The five files of the second audit's finding 7, cut from a file the library wrote."""
    import numpy as np
    from safetensors.numpy import save_file

    save_file({"a": np.arange(10, dtype=np.float32)}, folder / "ok.safetensors")
    good = (folder / "ok.safetensors").read_bytes()
    bom_header = b'\xef\xbb\xbf{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'
    return {
        "eight.safetensors": (good[:8], "header length 56 runs past the end of the 8-byte file"),
        "three.safetensors": (good[:3], "file is 3 bytes, shorter than the 8-byte header length"),
        "zerohdr.safetensors": (struct.pack("<Q", 0), "header length 0 is too small for a JSON object"),
        "hugehdr.safetensors": (struct.pack("<Q", 2**63) + b"{}",
                                "header length 9223372036854775808 exceeds the cap of 104857600 bytes"),
        "bom.safetensors": (safetensors_bytes(bom_header, bytes(4)),
                            "header must start with '{' (a JSON object), it starts with b'\\xef\\xbb\\xbf{' "
                            "(a UTF-8 byte order mark)"),
    }


def test_damaged_safetensors_are_invalid_in_scan_and_in_the_gate(tmp_path, capsys):
    from gate.cli import main
    from gate.formats.gate_check import check_formats
    from gate.formats.policy import FormatsPolicy
    from gate.results import Status

    expected = _damaged_files(tmp_path)
    for name, (content, _) in expected.items():
        (tmp_path / name).write_bytes(content)
    assert main(["scan", str(tmp_path), "--json"]) == 1
    files = {f["path"]: f for f in json.loads(capsys.readouterr().out)["files"]}
    assert files["ok.safetensors"]["status"] == "ok"
    for name, (_, reason) in expected.items():
        assert (files[name]["format"], files[name]["status"]) == ("safetensors", "invalid"), name
        assert len(files[name]["errors"]) == 1 and reason in files[name]["errors"][0], (name, files[name])
    results = {r.name: r for r in check_formats(FormatsPolicy(), tmp_path)}
    assert results["formats"].status is Status.FAILED
    assert sorted(n for n in results if n != "formats") == sorted(f"formats.{n}" for n in expected)


@pytest.mark.parametrize("name,content,reason", [
    ("model.bin", None, "a UTF-8 byte order mark"),  # claimed by its header length and "{", not its name
    ("model.safetensors", b"", "file is 0 bytes"),
    ("model.safetensors", b"<html>404 Not Found</html>", "the file starts with the text '<html>40': not safetensors"),
    ("model.safetensors", safetensors_bytes(b'  {"__metadata__": {}}'), "it starts with b'  {\"'"),
])
def test_files_that_claim_to_be_safetensors_are_validated(tmp_path, name, content, reason):
    from gate.formats.detect import detect

    if content is None:
        content = safetensors_bytes(b'\xef\xbb\xbf{"__metadata__": {}}')
    path = tmp_path / name
    path.write_bytes(content)
    assert detect(path).format == "safetensors"
    errors = validate_safetensors(path).errors
    assert len(errors) == 1 and reason in errors[0], errors
