import pickle
import zipfile
from collections import OrderedDict

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from gate.formats.detect import Detection, detect


def _tensor_file(tmp_path, name, **kwargs):
    path = tmp_path / name
    torch.save({"w": torch.arange(4.0)}, path, **kwargs)
    return path


@pytest.mark.parametrize("protocol", range(6))
def test_pickles_of_every_protocol_are_pickles_whatever_their_name(tmp_path, protocol):
    for name in ("model.safetensors", "config.p", "weights.npy"):
        path = tmp_path / name
        path.write_bytes(pickle.dumps(OrderedDict(a=[1, 2.5, "x"]), protocol=protocol))
        assert detect(path).format == "pickle", (name, protocol)


def test_each_format_by_content(tmp_path):
    save_file({"w": torch.zeros(2)}, tmp_path / "a.bin")
    assert detect(tmp_path / "a.bin").format == "safetensors"
    assert detect(_tensor_file(tmp_path, "b.safetensors")).format == "pytorch-zip"
    legacy = _tensor_file(tmp_path, "c.pt", _use_new_zipfile_serialization=False)
    assert detect(legacy).format == "pickle"
    np.save(tmp_path / "d.npy", np.arange(3))
    assert detect(tmp_path / "d.npy").format == "numpy"
    np.savez(tmp_path / "e.npz", a=np.arange(3), b=np.ones(2))
    assert detect(tmp_path / "e.npz").format == "numpy-npz"
    (tmp_path / "f.bin").write_bytes(b"GGUF" + (3).to_bytes(4, "little") + bytes(16))
    assert detect(tmp_path / "f.bin") .format == "gguf"
    (tmp_path / "g.weights").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(64))
    assert detect(tmp_path / "g.weights").format == "hdf5"
    # ONNX ModelProto: ir_version=8 (field 1), producer_name="x" (field 2), as protobuf bytes.
    (tmp_path / "h.bin").write_bytes(b"\x08\x08\x12\x01x\x3a\x00")
    assert detect(tmp_path / "h.bin").format == "onnx"
    with zipfile.ZipFile(tmp_path / "i.zip", "w") as archive:
        archive.writestr("readme.txt", "hello")
    assert detect(tmp_path / "i.zip").format == "zip"


def test_git_lfs_pointer_is_named(tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:" + "a" * 64 + "\nsize 1234\n")
    found = detect(path)
    assert found.format == "git-lfs-pointer"
    assert "sha256:" + "a" * 64 in found.detail and "1234" in found.detail


@pytest.mark.parametrize("name,content", [
    ("MLmodel", "flavors:\n  python_function:\n    loader_module: mlflow.sklearn\n"),
    ("conda.yaml", "channels:\n- conda-forge\ndependencies:\n- python=3.11\n"),
    ("requirements.txt", "mlflow==3.1\nscikit-learn==1.5\n"),
    ("input_example.json", '{"columns": ["a"], "data": [[1]]}'),
    ("config.json", '{"model_type": "bert", "hidden_size": 384}'),
    ("vocab.txt", "[PAD]\n[UNK]\nthe\n"),
    ("notes.md", "Nothing here is a pickle, even though it starts with N.\n"),
    ("comment.txt", "(this starts with a MARK opcode)\n"),
])
def test_config_and_text_files_are_text(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content)
    assert detect(path).format == "text"


def test_empty_and_binary_noise(tmp_path):
    (tmp_path / "empty").write_bytes(b"")
    assert detect(tmp_path / "empty").format == "empty"
    (tmp_path / "noise").write_bytes(bytes(range(256)) * 4)
    assert detect(tmp_path / "noise").format == "unknown"


@pytest.mark.parametrize("compress,expected", [
    (lambda b: __import__("zlib").compress(b, 3), "zlib stream"),
    (lambda b: __import__("gzip").compress(b), "gzip stream"),
    (lambda b: __import__("bz2").compress(b), "bz2 stream"),
    (lambda b: __import__("lzma").compress(b), "xz stream"),
    (lambda b: __import__("lzma").compress(b, format=__import__("lzma").FORMAT_ALONE), "lzma stream"),
], ids=["zlib", "gzip", "bz2", "xz", "lzma"])
def test_compressed_streams_joblib_would_open_are_recognised(tmp_path, compress, expected):
    path = tmp_path / "model.joblib"
    path.write_bytes(compress(pickle.dumps({"a": 1}, protocol=4)))
    assert detect(path) == Detection("compressed", expected)


def test_text_that_starts_like_a_zlib_header_stays_text(tmp_path):
    (tmp_path / "notes.txt").write_text("x^2 + y^2 = r^2\n")  # 0x78 0x5e: a valid zlib header
    assert detect(tmp_path / "notes.txt").format == "text"
