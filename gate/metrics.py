"""Evaluation metrics from a model's real predictions (pure: arrays in, numbers out).

scikit-learn computes every metric; this module only shapes the inputs and
says, per metric, why it could not be computed (a missing metric fails).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass
class MetricResult:
    values: dict[str, float] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # metric -> why it is missing


def _flatten_predictions(predictions: Any, rows: int) -> Any:
    import numpy as np

    array = predictions.to_numpy() if hasattr(predictions, "to_numpy") else np.asarray(predictions)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise ValueError(f"the model returned predictions of shape {list(array.shape)}; "
                         "evaluation needs one prediction per row")
    if len(array) != rows:
        raise ValueError(f"the model returned {len(array)} predictions for {rows} rows")
    return array


def _comparable_labels(y: Any, y_pred: Any) -> tuple[Any, Any]:
    """Labels and predictions of one type, so that 2, 2.0 and "2" are the same class.

    A target column read as floats (a CSV that once held a NaN) with a model answering ints
    must not count every prediction as wrong; a model answering "1" for label 1 (a JSON or
    string column) neither.
    """
    import numpy as np

    numeric = "biuf"
    if y.dtype.kind == y_pred.dtype.kind:
        return y, y_pred
    if y.dtype.kind in numeric and y_pred.dtype.kind in numeric:
        return y.astype(np.float64), y_pred.astype(np.float64)
    try:  # one side is text: numbers written as text are still numbers
        return y.astype(np.float64), y_pred.astype(np.float64)
    except (TypeError, ValueError):  # real class names ("setosa"): compare as text
        return y.astype(str), y_pred.astype(str)


def _some(labels: Any, shown: int = 5) -> str:
    import numpy as np

    values = [str(v) for v in np.unique(labels)[:shown + 1]]
    return ", ".join(values[:shown]) + (", ..." if len(values) > shown else "")


def _binary_roc_auc(sk: Any, y_true: Any, proba: Any, classes: list[Any] | None, pos_label: Any) -> float:
    """The AUC of ranking pos_label first (by default the greater class, as scikit-learn does).

    roc_auc_score on the raw target always takes the greater label as positive, so scoring it
    with the probability of another class (pos_label: 0) would report 1 - AUC.
    """
    import numpy as np

    labels = list(classes) if classes is not None else sorted(np.unique(y_true).tolist())
    if len(labels) != 2:
        raise ValueError(f"roc_auc: the model has {len(labels)} classes but returned 2 probability columns")
    if pos_label is None:
        positive = 1
    else:
        matches = [i for i, label in enumerate(labels) if label == pos_label or str(label) == str(pos_label)]
        if not matches:
            raise ValueError(f"roc_auc: pos_label {pos_label!r} is not one of the model's classes "
                             f"({', '.join(map(str, labels))})")
        positive = matches[0]
    y, label = _comparable_labels(y_true, np.asarray([labels[positive]]))
    return sk.roc_auc_score(y == label[0], proba[:, positive])


def compute_metrics(
    *,
    task: str,
    metrics: list[str],
    y_true: Any,
    predictions: Any,
    probabilities: Any = None,
    classes: list[Any] | None = None,
    proba_error: str | None = None,
    average: str = "macro",
    pos_label: Any = None,
    single_row_ms: list[float] | None = None,
) -> MetricResult:
    import numpy as np
    from sklearn import metrics as sk

    result = MetricResult()
    y = np.asarray(y_true)
    try:
        y_pred = _flatten_predictions(predictions, len(y))
    except ValueError as error:
        for name in metrics:
            if not name.startswith("latency"):
                result.errors[name] = str(error)
        y_pred = None
    if y_pred is not None and task == "classification":
        y, y_pred = _comparable_labels(y, y_pred)
        if len(y) and not set(np.unique(y)) & set(np.unique(y_pred)):
            # Not a bad model but a label mismatch (class names vs indices, another encoding):
            # say so instead of scoring 0.
            mismatch = (f"no predicted label occurs in the target column (targets: {_some(y)}; "
                        f"predictions: {_some(y_pred)}): check evaluation.target and how labels are encoded")
            for name in metrics:
                if name in ("accuracy", "precision", "recall", "f1"):
                    result.errors[name] = mismatch
    binary_kwargs: dict[str, Any] = {"average": average, "zero_division": 0}
    if average == "binary" and pos_label is not None:
        binary_kwargs["pos_label"] = pos_label

    def proba_for(name: str) -> Any:
        if probabilities is None:
            raise ValueError(proba_error or f"{name} needs class probabilities, which the model did not return")
        proba = np.asarray(probabilities, dtype=float)
        if proba.shape[0] != len(y):
            raise ValueError(f"the model returned {proba.shape[0]} probability rows for {len(y)} rows")
        return proba

    for name in metrics:
        if name in result.errors:
            continue
        try:
            if name in ("latency_p50_ms", "latency_p95_ms"):
                if not single_row_ms:
                    raise ValueError("no single-row timings were recorded")
                q = 50 if name == "latency_p50_ms" else 95
                value = float(np.percentile(np.asarray(single_row_ms), q))
            elif y_pred is None:
                continue
            elif name == "accuracy":
                value = sk.accuracy_score(y, y_pred)
            elif name == "precision":
                value = sk.precision_score(y, y_pred, **binary_kwargs)
            elif name == "recall":
                value = sk.recall_score(y, y_pred, **binary_kwargs)
            elif name == "f1":
                value = sk.f1_score(y, y_pred, **binary_kwargs)
            elif name == "roc_auc":
                proba = proba_for(name)
                if proba.shape[1] == 2:
                    value = _binary_roc_auc(sk, np.asarray(y_true), proba, classes, pos_label)
                else:
                    avg = average if average in ("micro", "macro", "weighted") else "macro"
                    value = sk.roc_auc_score(y_true, proba, multi_class="ovr", average=avg, labels=classes)
            elif name == "log_loss":
                value = sk.log_loss(y_true, proba_for(name), labels=classes)
            elif name == "mae":
                value = sk.mean_absolute_error(y, y_pred.astype(float))
            elif name == "rmse":
                value = math.sqrt(sk.mean_squared_error(y, y_pred.astype(float)))
            elif name == "r2":
                value = sk.r2_score(y, y_pred.astype(float))
            else:
                raise ValueError(f"unknown metric {name}")
            result.values[name] = float(value)
        except (ValueError, TypeError, IndexError) as error:
            result.errors[name] = str(error).splitlines()[0][:300]
    return result
