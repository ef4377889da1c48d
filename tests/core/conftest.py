"""Fixtures for the gate core: real iris models logged once, new registry versions per test."""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from gate.cli import main

ROOT = Path(__file__).resolve().parents[2]
HOLDOUT = ROOT / "examples" / "data" / "iris-holdout.csv"
MODEL_CODE = Path(__file__).parent / "model_code"
_names = itertools.count(1)
REQUIREMENTS = ["mlflow", "scikit-learn", "numpy"]


@dataclass
class Logged:
    source: str  # models:/m-<id> of an MLflow 3 logged model
    run_id: str


@dataclass
class GateResult:
    code: int
    out: str
    err: str


@pytest.fixture(scope="session")
def logged_models(mlflow_server) -> dict[str, Logged]:
    """Each kind of model logged once per session; tests register fresh versions from them."""
    import mlflow
    import mlflow.pyfunc
    import mlflow.sklearn

    from models import IRIS_FEATURES, iris_split, train_iris

    mlflow.set_tracking_uri(mlflow_server.url)
    mlflow.set_experiment("core-tests")
    train, holdout = iris_split()
    logged = {}
    for quality in ("good", "bad"):
        model = train_iris(quality)
        with mlflow.start_run() as run:
            accuracy = float((model.predict(holdout[IRIS_FEATURES]) == holdout["target"]).mean())
            mlflow.log_metric("val_accuracy", accuracy)
            info = mlflow.sklearn.log_model(model, name="model", input_example=train[IRIS_FEATURES].head(2),
                                            serialization_format="pickle", pip_requirements=REQUIREMENTS)
        logged[quality] = Logged(f"models:/{info.model_id}", run.info.run_id)
    for code_file in MODEL_CODE.glob("*.py"):
        with mlflow.start_run() as run:
            # Explicit requirements: MLflow would otherwise load each model to infer them,
            # which for the hanging models means waiting out its inference timeout.
            info = mlflow.pyfunc.log_model(name="model", python_model=str(code_file), pip_requirements=REQUIREMENTS)
        logged[code_file.stem] = Logged(f"models:/{info.model_id}", run.info.run_id)
    return logged


@pytest.fixture()
def register(tracking_uri, logged_models):
    """register(kind, name=None) -> (name, version): a fresh registry version of a logged model."""
    from gate.registration import register_source
    from gate.registry import Registry

    registry = Registry(tracking_uri)

    def _register(kind: str, name: str | None = None) -> tuple[str, str]:
        name = name or f"model-{next(_names)}-{kind}"
        info = register_source(registry, name, logged_models[kind].source, 60, 0.2)
        return name, info.version

    return _register


@pytest.fixture()
def client(tracking_uri):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri)


BASE_POLICY: dict[str, Any] = {
    "version": 1,
    "formats": {"pickle": "scan", "allow_globals": ["sklearn.*", "numpy.*", "scipy.*", "joblib.*"]},
    "load": {"timeout_s": 60},
    "smoke": {"timeout_s": 30, "cases": [{
        "name": "one-row",
        "input": {"records": [{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}]},
        "expect": {"rows": 1, "finite": True},
    }]},
    "evaluation": {"dataset": str(HOLDOUT), "target": "target", "task": "classification",
                   "metrics": ["accuracy", "f1"]},
    "thresholds": {"accuracy": {"direction": "higher", "min": 0.8}},
    "promotion": {"alias": "champion"},
}


@pytest.fixture()
def policy(tmp_path):
    """policy(**sections) -> path of a policy file: BASE_POLICY with sections replaced (None removes)."""
    counter = itertools.count(1)

    def _policy(**sections: Any) -> Path:
        data = copy.deepcopy(BASE_POLICY)
        for key, value in sections.items():
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value
        path = tmp_path / f"policy-{next(counter)}.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    return _policy


@pytest.fixture()
def gate(capsys):
    """gate(*argv) -> GateResult: the real CLI, in-process."""

    def _gate(*argv: str) -> GateResult:
        capsys.readouterr()
        code = main(list(argv))
        captured = capsys.readouterr()
        return GateResult(code, captured.out, captured.err)

    return _gate
