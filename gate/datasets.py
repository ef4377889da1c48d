"""Reading evaluation datasets and smoke inputs into the files the model process reads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gate.errors import UsageError

_SUFFIX_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl"}


def detect_format(path: Path, declared: str) -> str:
    if declared != "auto":
        return declared
    fmt = _SUFFIX_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise UsageError(f"dataset {path}: cannot tell the format from the extension {path.suffix!r}; "
                         "set evaluation.format to csv, parquet or jsonl")
    return fmt


def load_table(path: Path, declared_format: str = "auto", what: str = "dataset") -> Any:
    """A pandas DataFrame from CSV, Parquet or JSON lines; UsageError naming the file otherwise."""
    import pandas as pd

    fmt = detect_format(path, declared_format)
    if not path.is_file():
        raise UsageError(f"{what} {path}: file not found")
    try:
        if fmt == "csv":
            frame = pd.read_csv(path)
        elif fmt == "parquet":
            frame = pd.read_parquet(path)
        else:
            # precise_float: the default parser is off by an ulp on some decimals, so a JSON-lines
            # copy of a CSV scored differently. dtype=False: no guessing that a column named like
            # a date ("event_time", "modified") holding numbers is a datetime.
            frame = pd.read_json(path, lines=True, precise_float=True, dtype=False)
    except Exception as error:  # pandas/pyarrow raise many types for malformed files
        detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UsageError(f"{what} {path}: cannot read as {fmt}: {detail[:200]}") from None
    if frame.empty:
        raise UsageError(f"{what} {path}: no rows")
    return frame


def split_features(frame: Any, target: str, features: list[str] | None, path: Path) -> tuple[Any, Any]:
    if target not in frame.columns:
        raise UsageError(f"dataset {path}: target column {target!r} not found; columns are "
                         f"{', '.join(map(str, frame.columns[:20]))}")
    if frame[target].isna().any():
        raise UsageError(f"dataset {path}: target column {target!r} has {int(frame[target].isna().sum())} "
                         "missing values")
    if features is None:
        columns = [c for c in frame.columns if c != target]
    else:
        missing = [c for c in features if c not in frame.columns]
        if missing:
            raise UsageError(f"dataset {path}: feature columns not found: {', '.join(missing)}")
        columns = list(features)
    if not columns:
        raise UsageError(f"dataset {path}: no feature columns besides the target {target!r}")
    return frame[columns], frame[target]


def write_model_input(data: Any, path: Path) -> dict[str, Any]:
    """Write a smoke or evaluation input where the worker reads it; returns the worker's input spec."""
    if isinstance(data, list):
        path = path.with_suffix(".json")
        path.write_text(json.dumps(data))
        path.chmod(0o644)  # model code may run as another user (MODEL_GATE_MODEL_USER)
        return {"kind": "strings", "file": str(path)}
    path = path.with_suffix(".parquet")
    frame = data.copy()
    frame.columns = [str(c) for c in frame.columns]
    frame.to_parquet(path, index=False)
    path.chmod(0o644)
    return {"kind": "dataframe", "file": str(path)}


def smoke_input_data(spec: Any, resolve_path: Any) -> Any:
    """The model input a smoke case describes: a DataFrame, or a list of strings."""
    import pandas as pd

    if spec.strings is not None:
        return list(spec.strings)
    if spec.records is not None:
        return pd.DataFrame.from_records(spec.records)
    if spec.rows is not None:
        columns = spec.columns or [str(i) for i in range(len(spec.rows[0]))]
        return pd.DataFrame(spec.rows, columns=columns)
    return load_table(resolve_path(spec.file), what="smoke input")


def read_output(meta: dict[str, Any]) -> Any:
    """Predictions saved by the worker, as a DataFrame, ndarray or list."""
    import numpy as np
    import pandas as pd

    file = Path(meta["file"])
    if file.suffix == ".parquet":
        return pd.read_parquet(file)
    if file.suffix == ".npy":
        return np.load(file, allow_pickle=False)
    return json.loads(file.read_text())
