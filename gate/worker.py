"""The child process that loads and runs model code (run as `python -m gate.worker`).

Model code is untrusted in the sense that it can hang, crash or exit; it runs
here, never in the gate's own process. The parent (gate.sandbox) sends one
JSON command per line on a pipe and reads one JSON answer per line on
another, so whatever the model prints to stdout cannot corrupt the protocol.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any


def _save_output(output: Any, path: Path) -> dict[str, Any]:
    """Store predictions without pickle: parquet for frames, .npy for numeric arrays, JSON otherwise."""
    import numpy as np
    import pandas as pd

    if isinstance(output, pd.Series):
        output_type, output = "series", output.to_frame(name=str(output.name or "prediction"))
    elif isinstance(output, pd.DataFrame):
        output_type = "dataframe"
    elif isinstance(output, np.ndarray):
        output_type = "ndarray"
    elif isinstance(output, (list, tuple)):
        output_type = "list"
    else:
        output_type = type(output).__name__
    if isinstance(output, pd.DataFrame):
        frame = output.copy()
        frame.columns = [str(c) for c in frame.columns]
        try:
            frame.to_parquet(path.with_suffix(".parquet"), index=False)
            return {"output_type": output_type, "file": str(path.with_suffix(".parquet")),
                    "shape": list(frame.shape), "columns": list(frame.columns)}
        except Exception:  # nested objects that parquet refuses: fall back to JSON records
            output = frame.to_dict(orient="records")
    try:
        array = np.asarray(output)
    except Exception:
        array = None
    if array is not None and array.dtype.kind in "biuf":
        np.save(path.with_suffix(".npy"), array, allow_pickle=False)
        return {"output_type": output_type, "file": str(path.with_suffix(".npy")), "shape": list(array.shape)}
    data = output.tolist() if hasattr(output, "tolist") else output
    path.with_suffix(".json").write_text(json.dumps(data, default=str))
    shape = list(array.shape) if array is not None and array.dtype != object else [len(data)] if isinstance(data, list) else []
    return {"output_type": output_type, "file": str(path.with_suffix(".json")), "shape": shape}


def _read_input(spec: dict[str, Any]) -> Any:
    import pandas as pd

    if spec["kind"] == "strings":
        return json.loads(Path(spec["file"]).read_text())
    return pd.read_parquet(spec["file"])


def _as_frame_or_list(data: Any, start: int, stop: int) -> Any:
    return data.iloc[start:stop] if hasattr(data, "iloc") else data[start:stop]


class Worker:
    def __init__(self, import_s: float) -> None:
        self.import_s = import_s
        self.model: Any = None

    def load(self, command: dict[str, Any]) -> dict[str, Any]:
        import mlflow.pyfunc

        started = time.perf_counter()
        # suppress_warnings: the gate compares requirements.txt with the installed packages itself
        # (load.requirements); MLflow's own check maps every installed module first (~0.3 s).
        self.model = mlflow.pyfunc.load_model(command["model"], suppress_warnings=True)
        flavors = sorted(getattr(getattr(self.model, "metadata", None), "flavors", {}) or {})
        return {"duration_s": time.perf_counter() - started, "import_s": self.import_s, "flavors": flavors}

    def predict(self, command: dict[str, Any]) -> dict[str, Any]:
        data = _read_input(command["input"])
        batch = int(command.get("batch_size") or 0)
        n = len(data)
        outputs, call_ms = [], []
        step = batch if batch > 0 else max(n, 1)
        for start in range(0, max(n, 1), step):
            chunk = _as_frame_or_list(data, start, start + step)
            t0 = time.perf_counter()
            outputs.append(self.model.predict(chunk))
            call_ms.append((time.perf_counter() - t0) * 1000)
        output = _concat(outputs)
        answer = _save_output(output, Path(command["output"]))
        answer["call_ms"] = call_ms
        if command.get("proba"):
            answer.update(self._probabilities(data, Path(command["output"] + "-proba")))
        if command.get("latency_samples"):
            answer["single_row_ms"] = self._single_row_latency(data, int(command["latency_samples"]))
        return answer

    def _probabilities(self, data: Any, path: Path) -> dict[str, Any]:
        import numpy as np

        try:
            raw = self.model.get_raw_model()
        except Exception:
            raw = None
        predict_proba = getattr(raw, "predict_proba", None)
        if predict_proba is None:
            return {"proba_error": "the model has no predict_proba (needed for roc_auc and log_loss)"}
        proba = np.asarray(predict_proba(data), dtype=float)
        np.save(path.with_suffix(".npy"), proba, allow_pickle=False)
        classes = getattr(raw, "classes_", None)
        return {"proba_file": str(path.with_suffix(".npy")),
                "classes": [c.item() if hasattr(c, "item") else c for c in classes] if classes is not None else None}

    def _single_row_latency(self, data: Any, samples: int) -> list[float]:
        timings = []
        for i in range(min(samples, len(data))):
            row = _as_frame_or_list(data, i, i + 1)
            t0 = time.perf_counter()
            self.model.predict(row)
            timings.append((time.perf_counter() - t0) * 1000)
        return timings


def _concat(outputs: list[Any]) -> Any:
    import numpy as np
    import pandas as pd

    if len(outputs) == 1:
        return outputs[0]
    first = outputs[0]
    if isinstance(first, (pd.DataFrame, pd.Series)):
        return pd.concat(outputs, ignore_index=True)
    if isinstance(first, np.ndarray):
        return np.concatenate(outputs)
    if isinstance(first, list):
        return [item for out in outputs for item in out]
    return outputs


def main() -> int:
    parser = argparse.ArgumentParser(prog="gate.worker")
    parser.add_argument("--cmd-fd", type=int, required=True)
    parser.add_argument("--answer-fd", type=int, required=True)
    args = parser.parse_args()
    # Weights must come from the model folder, never from a hub.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    commands = os.fdopen(args.cmd_fd, "r")
    answers = os.fdopen(args.answer_fd, "w")
    # Warm up while the parent is still resolving, downloading and verifying: these imports run
    # no model code, and they are most of a small model's load time.
    started = time.perf_counter()
    import mlflow.pyfunc  # noqa: F401
    import pandas  # noqa: F401

    worker = Worker(import_s=time.perf_counter() - started)
    for line in commands:
        command = json.loads(line)
        op = command.get("op")
        if op == "exit":
            break
        try:
            answer = {"ok": True, **getattr(worker, op)(command)}
        except Exception as error:  # report any model failure to the parent, which decides
            answer = {"ok": False, "error": f"{type(error).__name__}: {error}",
                      "traceback": traceback.format_exc()[-4000:]}
        answers.write(json.dumps(answer, default=str) + "\n")
        answers.flush()
    return 0


if __name__ == "__main__":
    code = main()
    # Nothing here needs an orderly interpreter teardown (answers are flushed, outputs written),
    # and tearing down torch/sklearn/pandas takes most of a second that the gate would wait for.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
