import json

import torch
from safetensors.torch import save_file

from gate.formats.inspect import inspect_tree


def _sharded(tmp_path, weight_map=None, extra=()):
    save_file({"a": torch.ones(2), "b": torch.ones(3)}, tmp_path / "model-00001-of-00002.safetensors")
    save_file({"c": torch.ones(4)}, tmp_path / "model-00002-of-00002.safetensors")
    for name in extra:
        save_file({"z": torch.ones(1)}, tmp_path / name)
    weight_map = weight_map or {"a": "model-00001-of-00002.safetensors", "b": "model-00001-of-00002.safetensors",
                                "c": "model-00002-of-00002.safetensors"}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return {r.path: r for r in inspect_tree(tmp_path)}


def test_a_consistent_index_passes(tmp_path):
    index = _sharded(tmp_path)["model.safetensors.index.json"]
    assert index.errors == [] and index.warnings == [] and index.detail == "shard index"


def test_missing_shard_wrong_shard_and_unlisted_tensor(tmp_path):
    wm = {"a": "model-00002-of-00002.safetensors", "c": "model-00002-of-00002.safetensors",
          "d": "model-00003-of-00003.safetensors"}
    errors = _sharded(tmp_path, wm)["model.safetensors.index.json"].errors
    assert "shard 'model-00003-of-00003.safetensors' named in the index does not exist" in errors
    assert "tensor 'a' is not in shard 'model-00002-of-00002.safetensors' as the index says" in errors


def test_tensor_missing_from_index(tmp_path):
    wm = {"a": "model-00001-of-00002.safetensors", "c": "model-00002-of-00002.safetensors"}
    errors = _sharded(tmp_path, wm)["model.safetensors.index.json"].errors
    assert errors == ["tensor 'b' in shard 'model-00001-of-00002.safetensors' is missing from the index"]


def test_unreferenced_shard_is_reported(tmp_path):
    index = _sharded(tmp_path, extra=["model-00003-of-00003.safetensors"])["model.safetensors.index.json"]
    assert index.errors == []
    assert index.warnings == ["shard 'model-00003-of-00003.safetensors' is not referenced by any index"]


def test_shard_names_cannot_leave_the_folder(tmp_path):
    wm = {"a": "../elsewhere.safetensors"}
    errors = _sharded(tmp_path, wm)["model.safetensors.index.json"].errors
    assert errors == ["shard name '../elsewhere.safetensors' is not a plain file name next to the index"]
