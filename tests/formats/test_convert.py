import json
import os
from pathlib import Path

import pytest
import torch

from gate.cli import main
from gate.formats.convert import parse_size, unsafe_loader_reason
from gate.formats.safetensors_io import load_state_dict
from tests.formats.conftest import Evil


def _convert_json(capsys, *args) -> dict:
    assert main(["convert", *map(str, args), "--json"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_sizes_and_loader_checks():
    assert parse_size("5GB") == 5 * 10**9 and parse_size("2GiB") == 2 * 2**30 and parse_size("1024") == 1024
    assert unsafe_loader_reason("2.13.0+cpu", {}) is None
    assert "known torch.load(weights_only=True) bypasses" in unsafe_loader_reason("2.5.1", {})
    assert "upgrade to 2.10.0" in unsafe_loader_reason("2.9.1+cu121", {})
    assert "forces unsafe pickle loading" in unsafe_loader_reason("2.13.0", {"TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"})


def test_refuses_when_the_environment_forces_unsafe_loading(tmp_path, monkeypatch, capsys):
    torch.save({"w": torch.ones(2)}, tmp_path / "m.pt")
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    assert main(["convert", str(tmp_path / "m.pt")]) == 2
    assert "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1" in capsys.readouterr().err
    assert not (tmp_path / "model.safetensors").exists()


def test_refuses_a_malicious_checkpoint_before_loading_it(tmp_path, capsys):
    marker = tmp_path / "pwned"
    torch.save({"w": torch.ones(2), "x": Evil(os.system, f"touch {marker}")}, tmp_path / "m.pt")
    assert main(["convert", str(tmp_path / "m.pt"), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "refusing to load" in err and "posix.system" in err
    assert not marker.exists() and not (tmp_path / "out").exists()
    assert main(["convert", str(tmp_path / "nothing.pt")]) == 2


def test_tied_weights_views_and_sharding(tmp_path, capsys):
    base = torch.arange(12, dtype=torch.float32)
    emb = torch.randn(10, 4)
    state = {"emb.weight": emb, "head.weight": emb, "full": base, "part": base[2:6],
             "nan": torch.tensor([float("nan"), -0.0]), "big": torch.randn(300)}
    torch.save(state, tmp_path / "ckpt.pt")
    result = _convert_json(capsys, tmp_path / "ckpt.pt", "--out", tmp_path / "out", "--max-shard-size", "1KB")
    assert result["aliases"] == {"head.weight": "emb.weight"}
    assert result["cloned_views"] == ["full", "part"]
    assert result["compared"] == 6 and len(result["files"]) > 1
    index = json.loads((tmp_path / "out" / "model.safetensors.index.json").read_text())
    assert "head.weight" not in index["weight_map"] and index["metadata"]["model_gate.aliases"]
    loaded = load_state_dict(tmp_path / "out")
    assert loaded["head.weight"].data_ptr() == loaded["emb.weight"].data_ptr()
    for name, tensor in state.items():
        assert torch.equal(loaded[name].view(torch.uint8), tensor.contiguous().view(torch.uint8)), name
    assert main(["scan", str(tmp_path / "out")]) == 0
    capsys.readouterr()


def test_sharded_bin_folder_and_legacy_files(tmp_path, capsys):
    src = tmp_path / "model"
    src.mkdir()
    torch.save({"a": torch.ones(3)}, src / "pytorch_model-00001-of-00002.bin")
    torch.save({"b": torch.zeros(2, 2)}, src / "pytorch_model-00002-of-00002.bin",
               _use_new_zipfile_serialization=False)
    (src / "pytorch_model.bin.index.json").write_text(json.dumps({"metadata": {}, "weight_map": {
        "a": "pytorch_model-00001-of-00002.bin", "b": "pytorch_model-00002-of-00002.bin"}}))
    (src / "tokenizer_config.json").write_text("{}")
    torch.save({"lr": 0.1}, src / "training_args.bin")
    result = _convert_json(capsys, src)
    out = tmp_path / "model-safetensors"
    assert result["files"] == ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    assert result["copied"] == ["tokenizer_config.json"] and result["skipped"] == ["training_args.bin"]
    assert torch.equal(load_state_dict(out)["b"], torch.zeros(2, 2))


@pytest.mark.slow
def test_tied_transformers_model_keeps_its_outputs(tmp_path, capsys):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(vocab_size=64, n_positions=32, n_embd=32, n_layer=2, n_head=2, tie_word_embeddings=True)
    model = GPT2LMHeadModel(config).eval()
    src = tmp_path / "tiny"
    src.mkdir()
    config.save_pretrained(src)
    state = model.state_dict()
    assert state["lm_head.weight"].data_ptr() == state["transformer.wte.weight"].data_ptr()
    torch.save(state, src / "pytorch_model.bin")
    result = _convert_json(capsys, src, "--out", tmp_path / "out")
    assert result["aliases"] == {"lm_head.weight": "transformer.wte.weight"}
    assert result["model_check"]["model_outputs_identical"] is True
    reloaded = GPT2LMHeadModel.from_pretrained(tmp_path / "out").eval()
    assert reloaded.lm_head.weight.data_ptr() == reloaded.transformer.wte.weight.data_ptr()
    ids = torch.arange(10).reshape(1, 10)
    with torch.no_grad():
        assert torch.equal(model(ids).logits, reloaded(ids).logits)


@pytest.mark.slow
def test_all_minilm_round_trip_gives_identical_tensors_and_embeddings(minilm_dir, tmp_path, capsys, monkeypatch):
    import shutil

    from safetensors.torch import load_file
    from sentence_transformers import SentenceTransformer

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    src = tmp_path / "minilm"
    shutil.copytree(minilm_dir, src, ignore=shutil.ignore_patterns("model.safetensors"))
    original = load_file(minilm_dir / "model.safetensors")
    torch.save(original, src / "pytorch_model.bin")
    result = _convert_json(capsys, src, "--out", tmp_path / "out")
    assert result["compared"] == len(original) and result["model_check"]["model_outputs_identical"] is True
    converted = load_state_dict(tmp_path / "out" / "model.safetensors")
    assert converted.keys() == original.keys()
    assert all(torch.equal(converted[k], original[k]) for k in original)
    sentences = ["A gate decides whether a model ships.", "Pickles can run code."]
    before = SentenceTransformer(str(minilm_dir), device="cpu").encode(sentences, convert_to_tensor=True)
    after = SentenceTransformer(str(tmp_path / "out"), device="cpu").encode(sentences, convert_to_tensor=True)
    assert before.shape == (2, 384) and torch.equal(before, after)


# ------------------------------------------------------------------ links in the source folder

def _hf_folder(tmp_path):
    src = tmp_path / "hf"
    (src / "sub").mkdir(parents=True)
    torch.save({"w": torch.ones(2)}, src / "pytorch_model.bin")
    (src / "config.json").write_text("{}")
    return src


@pytest.mark.parametrize("make,expected", [
    (lambda src, outside: (src / "tokenizer.json").symlink_to(outside),
     "symlink outside the model folder: tokenizer.json -> {outside}"),
    (lambda src, outside: (src / "sub" / "x.txt").symlink_to(outside),
     "symlink outside the model folder: sub/x.txt -> {outside}"),
    (lambda src, outside: (src / "vocab.txt").symlink_to(src / "missing.txt"),
     "dangling symlink: vocab.txt -> {src}/missing.txt"),
    (lambda src, outside: (src / "linked").symlink_to(src / "sub"),
     "symlinked folder: linked -> {src}/sub (not followed)"),
    (lambda src, outside: os.mkfifo(src / "pipe"), "special file: pipe (not a regular file)"),
], ids=["outside", "outside-in-subfolder", "dangling", "folder", "fifo"])
def test_convert_refuses_links_it_must_not_copy_before_writing_anything(tmp_path, capsys, make, expected):
    src = _hf_folder(tmp_path)
    outside = tmp_path / "secret.txt"
    outside.write_text("root:x:0:0")
    make(src, outside)
    assert main(["convert", str(src), "--no-model-check"]) == 2
    err = capsys.readouterr().err
    assert f"cannot convert {src}: " + expected.format(outside=outside, src=src) in err
    assert not (tmp_path / "hf-safetensors").exists()


def test_convert_refuses_a_checkpoint_linked_from_outside(tmp_path, capsys):
    src = tmp_path / "hf"
    src.mkdir()
    torch.save({"w": torch.ones(2)}, tmp_path / "elsewhere.bin")
    (src / "pytorch_model.bin").symlink_to(tmp_path / "elsewhere.bin")
    assert main(["convert", str(src)]) == 2
    assert "symlink outside the model folder: pytorch_model.bin" in capsys.readouterr().err
    assert not (tmp_path / "hf-safetensors").exists()


def test_a_link_to_a_file_inside_the_folder_is_copied_as_its_content(tmp_path, capsys):
    src = _hf_folder(tmp_path)
    (src / "sub" / "tokenizer.json").write_text('{"model": "wordpiece"}')
    (src / "tokenizer.json").symlink_to(Path("sub") / "tokenizer.json")
    result = _convert_json(capsys, src, "--no-model-check")
    assert result["copied"] == ["config.json", "sub/tokenizer.json", "tokenizer.json"]
    copied = tmp_path / "hf-safetensors" / "tokenizer.json"
    assert not copied.is_symlink() and copied.read_text() == '{"model": "wordpiece"}'
