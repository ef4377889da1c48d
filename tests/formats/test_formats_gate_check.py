import json
import os
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from gate.cli import main
from gate.formats.gate_check import check_formats
from gate.formats.policy import FormatsPolicy
from gate.results import Status
from tests.formats.conftest import Evil


def _save_sklearn(folder: Path, **kwargs) -> Path:
    import mlflow.sklearn
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    X = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5], [0.9, 0.1]])
    model = LogisticRegression().fit(X, [0, 1, 0, 1])
    mlflow.sklearn.save_model(model, folder, input_example=X[:1], **kwargs)
    return folder


@pytest.fixture(scope="module")
def sklearn_model(tmp_path_factory) -> Path:
    """A real MLflow scikit-learn model folder: model.pkl (cloudpickle) plus MLmodel, conda.yaml, ..."""
    return _save_sklearn(tmp_path_factory.mktemp("mlflow") / "model", serialization_format="cloudpickle")


def test_mlflow_default_skops_format_holds_no_pickle(tmp_path):
    # MLflow 3 saves scikit-learn models with skops by default: a zip of JSON and plain .npy arrays.
    folder = _save_sklearn(tmp_path / "model")
    [summary] = check_formats(FormatsPolicy(), folder)
    files = {f["path"]: f for f in summary.details["files"]}
    assert summary.status is Status.PASSED
    assert files["model.skops"]["format"] == "zip" and files["model.skops"]["globals"] == []


def _by_name(results):
    return {r.name: r for r in results}


def test_mlflow_sklearn_model_is_blocked_by_default_and_the_files_are_recognised(sklearn_model):
    results = _by_name(check_formats(FormatsPolicy(), sklearn_model))
    summary = results["formats"]
    assert summary.status is Status.FAILED and summary.stage == "formats"
    files = {f["path"]: f for f in summary.details["files"]}
    assert files["model.pkl"]["format"] == "pickle"
    for name in ("MLmodel", "conda.yaml", "python_env.yaml", "requirements.txt"):
        assert files[name]["format"] == "text" and files[name]["status"] == "ok"
    failed = results["formats.model.pkl"]
    assert failed.status is Status.FAILED
    assert "model.pkl" in failed.message and "sklearn.linear_model._logistic.LogisticRegression" in failed.message
    assert "not on the allowlist" in failed.message
    assert [r.name for r in results.values() if r.status is Status.FAILED] == ["formats", "formats.model.pkl"]


def test_a_platform_policy_for_sklearn_passes_it(sklearn_model):
    policy = FormatsPolicy(allow_globals=["sklearn.*", "numpy.*", "scipy.*"])
    [summary] = check_formats(policy, sklearn_model)
    assert summary.status is Status.PASSED
    [pkl] = [f for f in summary.details["files"] if f["path"] == "model.pkl"]
    assert "sklearn.linear_model._logistic.LogisticRegression" in pkl["globals"]


def test_a_signed_pickle_passes_only_when_the_policy_trusts_signatures(sklearn_model):
    signed = frozenset({"model.pkl"})
    assert check_formats(FormatsPolicy(), sklearn_model, signed_files=signed)[0].status is Status.FAILED
    trusting = FormatsPolicy(trust_signed_pickles=True)
    assert check_formats(trusting, sklearn_model, signed_files=signed)[0].status is Status.PASSED
    assert check_formats(trusting, sklearn_model)[0].status is Status.FAILED


def test_the_denylist_wins_over_allow_patterns_and_signatures(tmp_path):
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(Evil(os.system, "id"), protocol=4))
    policy = FormatsPolicy(allow_globals=["posix.*", "os.*"], trust_signed_pickles=True, pickle="allow")
    results = _by_name(check_formats(policy, tmp_path, signed_files=frozenset({"model.pkl"})))
    assert results["formats"].status is Status.FAILED
    assert "posix.system: denied" in results["formats.model.pkl"].message


def test_pickle_deny_and_allowed_formats(tmp_path):
    torch.save({"w": torch.ones(2)}, tmp_path / "pytorch_model.bin")
    save_file({"w": torch.ones(2)}, tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_text("{}")
    assert check_formats(FormatsPolicy(), tmp_path)[0].status is Status.PASSED
    results = _by_name(check_formats(FormatsPolicy(pickle="deny"), tmp_path))
    assert "formats.pytorch_model.bin" in results and "formats.pickle is deny" in results["formats.pytorch_model.bin"].message
    results = _by_name(check_formats(FormatsPolicy(allowed=["safetensors"]), tmp_path))
    assert "format pytorch-zip is not in formats.allowed" in results["formats.pytorch_model.bin"].message
    assert "formats.config.json" not in results


def test_git_lfs_pointer_fails_with_a_clear_message(tmp_path):
    (tmp_path / "model.safetensors").write_text(
        "version https://git-lfs.github.com/spec/v1\noid sha256:" + "b" * 64 + "\nsize 90868376\n")
    results = _by_name(check_formats(FormatsPolicy(), tmp_path))
    assert "this is a git-lfs pointer, not weights" in results["formats.model.safetensors"].message


def test_symlink_out_of_the_folder_fails(tmp_path):
    outside = tmp_path / "secret.txt"
    outside.write_text("x")
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.bin").symlink_to(outside)
    results = _by_name(check_formats(FormatsPolicy(), model))
    assert "symlink points outside" in results["formats.weights.bin"].message


def test_policy_rejects_unknown_formats_and_catch_all_patterns():
    with pytest.raises(ValueError, match="unknown format 'pickles'"):
        FormatsPolicy(allowed=["pickles"])
    with pytest.raises(ValueError, match="plain top-level module"):
        FormatsPolicy(allow_globals=["*"])
    with pytest.raises(ValueError, match="names a module, which matches no global: use 'sklearn.\\*'"):
        FormatsPolicy(allow_globals=["sklearn"])
    with pytest.raises(ValueError, match="has an unclosed"):
        FormatsPolicy(allow_globals=["sklearn.["])
    assert FormatsPolicy(allow_globals=["sklearn.linear_model.[LR]*", "numpy.ndarray"]).allow_globals


# ------------------------------------------------------------------ the scan command

def test_scan_exit_codes_and_json(tmp_path, capsys):
    save_file({"w": torch.ones(2)}, tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_text("{}")
    assert main(["scan", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "model.safetensors" in out and "safetensors" in out and "ok" in out
    (tmp_path / "extra.bin").write_bytes(pickle.dumps(Evil(os.system, "id"), protocol=2))
    assert main(["scan", str(tmp_path), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    bad = [f for f in data["files"] if f["status"] != "ok"]
    assert data["ok"] is False and [f["path"] for f in bad] == ["extra.bin"]
    assert bad[0]["findings"][0]["global_name"] == "posix.system"
    assert main(["scan", str(tmp_path / "missing")]) == 2
    assert "no such file or folder" in capsys.readouterr().err


def test_scan_no_strict_and_allow_global(sklearn_model, capsys):
    assert main(["scan", str(sklearn_model)]) == 1
    assert "model-gate: error: 1 of" in capsys.readouterr().err
    assert main(["scan", str(sklearn_model), "--no-strict"]) == 0
    assert main(["scan", str(sklearn_model / "model.pkl"), "--allow-global", "sklearn.*",
                 "--allow-global", "numpy.*"]) == 0
    assert main(["scan", str(sklearn_model), "--allow-global", "*"]) == 2
