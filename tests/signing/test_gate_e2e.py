"""End to end: `model-gate check` rejects a tampered signed model before loading it.

The model is an MLflow pyfunc "model from code" whose code writes a marker file
when it is loaded. The untampered run proves the marker works (the gate loads
the model and the marker appears); the tampered run must exit 1 with the
named difference and leave no marker.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:Add type hints to the `predict` method")]


def _save_marker_model(folder: Path, marker: Path) -> Path:
    import mlflow

    code = folder / "marker_model.py"
    code.write_text(textwrap.dedent(f"""
        import pathlib
        import mlflow
        from mlflow.pyfunc import PythonModel

        # Runs when the model is loaded: the proof that loading happened.
        pathlib.Path({str(marker)!r}).write_text("loaded")

        class Echo(PythonModel):
            def predict(self, context, model_input, params=None):
                return [len(str(x)) for x in model_input["text"]]

        mlflow.models.set_model(Echo())
    """))
    model_dir = folder / "model"
    mlflow.pyfunc.save_model(str(model_dir), python_model=str(code))
    return model_dir


def test_tampered_model_is_rejected_before_it_is_loaded(tmp_path, keys, gate, capsys):
    marker = tmp_path / "LOADED"
    model_dir = _save_marker_model(tmp_path, marker)
    marker.unlink(missing_ok=True)  # saving a model from code runs it once; start clean
    assert gate("sign", model_dir, "--key", keys["p256"][0]) == 0
    policy = tmp_path / "policy.yaml"
    policy.write_text(textwrap.dedent(f"""
        version: 1
        integrity:
          signature:
            method: key
            public_keys: [{keys["p256"][1]}]
        smoke:
          cases:
            - name: echo
              input:
                records: [{{"text": "hello"}}]
              expect:
                rows: 1
    """))

    # Control: the signed, untouched model passes and loading it leaves the marker.
    code = gate("check", "--policy", policy, "--model-uri", model_dir, "--dry-run")
    out = capsys.readouterr()
    assert code == 0, out.out + out.err
    assert marker.read_text() == "loaded"
    marker.unlink()

    # Tamper with the code that loading would run.
    loader = next(model_dir.rglob("marker_model.py"))
    loader.write_text(loader.read_text() + "\nprint('injected')\n")
    code = gate("check", "--policy", policy, "--model-uri", model_dir, "--dry-run")
    out = capsys.readouterr()
    assert code == 1, out.out + out.err
    assert f"modified: {loader.relative_to(model_dir).as_posix()}" in out.out + out.err
    assert not marker.exists(), "the gate loaded a model whose signature did not verify"
