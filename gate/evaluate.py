"""Load a model in its own process, run the smoke cases and the evaluation dataset through it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from gate.datasets import read_output, smoke_input_data, write_model_input
from gate.metrics import MetricResult, compute_metrics
from gate.policy import EvaluationPolicy, SmokePolicy
from gate.results import CheckResult, Status
from gate.sandbox import ModelProcess, ModelProcessError
from gate.smoke import evaluate_expectations

LATENCY_SAMPLES = 50  # single-row predict calls timed for latency_p50_ms / latency_p95_ms


@dataclass
class EvaluationData:
    """The evaluation dataset, read once and written once for every model process."""

    features_spec: dict[str, Any]
    y_true: Any
    rows: int


@dataclass
class ModelRun:
    label: str  # "candidate" or "baseline"
    checks: list[CheckResult] = field(default_factory=list)
    metrics: MetricResult | None = None
    load_s: float = 0.0  # mlflow.pyfunc.load_model in the child
    import_s: float = 0.0  # the child's imports of mlflow and pandas (overlapping the download)
    predict_s: float = 0.0

    @property
    def failed(self) -> bool:
        return any(c.blocking for c in self.checks)


def prepare_evaluation(policy: EvaluationPolicy, dataset_path: Path, workdir: Path) -> EvaluationData:
    from gate.datasets import load_table, split_features

    frame = load_table(dataset_path, policy.format)
    features, target = split_features(frame, policy.target, policy.features, dataset_path)
    check_target_fits_policy(policy, target, dataset_path)
    spec = write_model_input(features, workdir / "evaluation-features")
    return EvaluationData(features_spec=spec, y_true=target.to_numpy(), rows=len(frame))


def check_target_fits_policy(policy: EvaluationPolicy, target: Any, dataset_path: Path) -> None:
    """Mistakes the dataset shows before any model runs: a policy error (exit 2), not a rejection."""
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    from gate.errors import UsageError

    column = f"dataset {dataset_path}: target column {policy.target!r}"
    if policy.task == "regression":
        if not is_numeric_dtype(target) or is_bool_dtype(target):
            raise UsageError(f"{column} is not numeric ({target.dtype}), but evaluation.task is regression")
        return
    labels = sorted({str(v) for v in target.unique()})
    shown = ", ".join(labels[:10]) + (", ..." if len(labels) > 10 else "")
    if policy.average == "binary" and len(labels) != 2:
        raise UsageError(f"evaluation.average: binary needs a target with two classes; {column} has "
                         f"{len(labels)} ({shown}): use micro, macro or weighted")
    if policy.pos_label is not None and str(policy.pos_label) not in labels:
        raise UsageError(f"evaluation.pos_label: {policy.pos_label!r} is not a class of {column} ({shown})")


def run_model(
    *,
    label: str,
    process: ModelProcess,
    model_dir: Path,
    load_timeout_s: float,
    smoke: SmokePolicy | None,
    resolve_path: Callable[[str], Path],
    evaluation: EvaluationPolicy | None,
    evaluation_data: EvaluationData | None,
    metrics: list[str],
) -> ModelRun:
    """Everything that executes model code, in `process` (the caller starts and closes it)."""
    run = ModelRun(label=label)
    prefix = "" if label == "candidate" else f"{label}."
    started = time.perf_counter()
    try:
        answer = process.call({"op": "load", "model": str(model_dir)}, load_timeout_s,
                              f"loading the {label} model")
    except ModelProcessError as error:
        run.checks.append(CheckResult(f"{prefix}load", "load", Status.ERROR, str(error),
                                      duration_s=time.perf_counter() - started))
        return run
    run.load_s = answer["duration_s"]
    run.import_s = answer.get("import_s", 0.0)
    run.checks.append(CheckResult(f"{prefix}load", "load", Status.PASSED,
                                  f"{label} model loaded in {run.load_s:.2f}s "
                                  f"(flavors: {', '.join(answer.get('flavors') or []) or 'unknown'})",
                                  value=round(run.load_s, 3), duration_s=time.perf_counter() - started))
    if smoke is not None:
        _run_smoke(run, process, smoke, resolve_path, process.workdir)
        if run.failed:
            return run
    if evaluation is not None and evaluation_data is not None:
        _run_evaluation(run, process, evaluation, evaluation_data, metrics, process.workdir, prefix)
    return run


def _run_smoke(run: ModelRun, process: ModelProcess, smoke: SmokePolicy, resolve_path: Callable[[str], Path],
               workdir: Path) -> None:
    deadline = time.monotonic() + smoke.timeout_s
    for index, case in enumerate(smoke.cases):
        started = time.perf_counter()
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            run.checks.append(CheckResult(f"smoke.{case.name}", "smoke", Status.ERROR,
                                          f"smoke timeout of {smoke.timeout_s:g}s used up before case {case.name!r}"))
            return
        data = smoke_input_data(case.input, resolve_path)
        spec = write_model_input(data, workdir / f"smoke-{index}-input")
        try:
            answer = process.call({"op": "predict", "input": spec, "output": str(workdir / f"smoke-{index}-output")},
                                  remaining, f"smoke case {case.name!r}", budget_s=smoke.timeout_s)
        except ModelProcessError as error:
            run.checks.append(CheckResult(f"smoke.{case.name}", "smoke", Status.ERROR, str(error),
                                          duration_s=time.perf_counter() - started))
            return
        run.predict_s += sum(answer.get("call_ms") or []) / 1000
        check = evaluate_expectations(case.name, case.expect, read_output(answer), answer)
        run.checks.append(_with_duration(check, time.perf_counter() - started))


def _run_evaluation(run: ModelRun, process: ModelProcess, policy: EvaluationPolicy, data: EvaluationData,
                    metrics: list[str], workdir: Path, prefix: str) -> None:
    started = time.perf_counter()
    wants_proba = any(m in ("roc_auc", "log_loss") for m in metrics)
    wants_latency = any(m.startswith("latency_") for m in metrics)
    command = {"op": "predict", "input": data.features_spec, "output": str(workdir / "evaluation-output"),
               "batch_size": policy.batch_size, "proba": wants_proba,
               "latency_samples": LATENCY_SAMPLES if wants_latency else 0}
    try:
        answer = process.call(command, policy.timeout_s, f"evaluating the {run.label} model")
    except ModelProcessError as error:
        run.checks.append(CheckResult(f"{prefix}evaluation", "evaluation", Status.ERROR, str(error),
                                      duration_s=time.perf_counter() - started))
        return
    run.predict_s += sum(answer.get("call_ms") or []) / 1000 + sum(answer.get("single_row_ms") or []) / 1000
    import numpy as np

    probabilities = np.load(answer["proba_file"], allow_pickle=False) if answer.get("proba_file") else None
    result = compute_metrics(
        task=policy.task, metrics=metrics, y_true=data.y_true, predictions=read_output(answer),
        probabilities=probabilities, classes=answer.get("classes"), proba_error=answer.get("proba_error"),
        average=policy.average, pos_label=policy.pos_label, single_row_ms=answer.get("single_row_ms"),
    )
    run.metrics = result
    shown = ", ".join(f"{k}={v:.4g}" for k, v in result.values.items())
    missing = "; ".join(f"{k}: {v}" for k, v in result.errors.items())
    run.checks.append(CheckResult(
        f"{prefix}evaluation", "evaluation", Status.PASSED,
        f"{run.label} evaluated on {data.rows} rows: {shown}" + (f" (not computed: {missing})" if missing else ""),
        value=result.values, duration_s=time.perf_counter() - started, details={"errors": result.errors}))


def _with_duration(check: CheckResult, seconds: float) -> CheckResult:
    from dataclasses import replace

    return replace(check, duration_s=round(seconds, 4))
