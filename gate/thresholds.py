"""Compare metrics with thresholds and with the baseline (pure).

Rules, in order (documented in the README):
- A missing, NaN or infinite candidate metric fails, whatever the severity.
- `min`/`max` are absolute bounds on the candidate.
- improvement = candidate - baseline when direction is higher, baseline - candidate when lower.
- relative improvement = improvement / |baseline|. When the baseline is exactly 0 it is 0 if the
  values are equal, +inf if the candidate is better and -inf if worse, so any regression from a zero
  baseline breaks every relative tolerance and any gain meets every relative requirement.
- `min_delta_*` require improvement >= the value; `max_regression_*` allow -improvement <= the value.
- No baseline: `on_missing_baseline: skip` skips the baseline comparisons (bounds still apply), `fail` fails.
- A baseline that exists but could not be evaluated fails the comparisons (by severity), whatever
  `on_missing_baseline` says: skipping them would let a worse model replace a champion the gate
  could not measure.
- Candidate and baseline the same version: reported, and a strictly positive `min_delta_*` fails.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gate.policy import Threshold
from gate.results import CheckResult, Status

_EPS = 1e-12  # float noise allowed when a value equals its bound


@dataclass(frozen=True)
class Baseline:
    version: str | None  # None: there is no baseline
    value: float | None = None
    missing_reason: str | None = None  # why there is no baseline value: on_missing_baseline decides
    same_as_candidate: bool = False
    unavailable: str | None = None  # the baseline exists but could not be measured: comparisons fail


def relative_improvement(improvement: float, baseline: float) -> float:
    if baseline == 0:
        return 0.0 if improvement == 0 else math.copysign(math.inf, improvement)
    return improvement / abs(baseline)


def _fmt(value: float) -> str:
    return f"{value:.6g}"


def evaluate_threshold(name: str, rule: Threshold, candidate: float | None, baseline: Baseline,
                       missing_reason: str | None = None) -> CheckResult:
    check_name = f"threshold.{name}"
    common = {"name": check_name, "stage": "thresholds", "threshold": rule.model_dump(exclude_none=True)}
    if candidate is None:
        return CheckResult(status=Status.FAILED, message=f"{name}: metric is missing"
                           + (f" ({missing_reason})" if missing_reason else ""), **common)
    if not math.isfinite(candidate):
        return CheckResult(status=Status.FAILED, value=candidate,
                           message=f"{name} is {candidate}, not a finite number", **common)

    problems: list[str] = []
    notes: list[str] = []
    if rule.min is not None and candidate < rule.min - _EPS:
        problems.append(f"{name} {_fmt(candidate)} is below the minimum {_fmt(rule.min)}")
    if rule.max is not None and candidate > rule.max + _EPS:
        problems.append(f"{name} {_fmt(candidate)} is above the maximum {_fmt(rule.max)}")

    baseline_value = baseline.value
    if rule.compares_baseline:
        if baseline.unavailable is not None and baseline_value is None:
            problems.append(f"{name}: cannot compare with baseline version {baseline.version}: {baseline.unavailable}; "
                            "fix the baseline, compare with another (evaluation.baseline.version) or turn the "
                            "comparison off (evaluation.baseline.enabled: false)")
        elif baseline.version is None or baseline_value is None:
            reason = baseline.missing_reason or "no baseline"
            if rule.on_missing_baseline == "fail":
                problems.append(f"{name}: cannot compare with a baseline: {reason}")
            else:
                notes.append(f"baseline comparison skipped: {reason}")
        elif not math.isfinite(baseline_value):
            problems.append(f"{name}: the baseline (version {baseline.version}) has {baseline_value}")
        else:
            problems += _compare(name, rule, candidate, baseline)
            if baseline.same_as_candidate:
                notes.append(f"candidate and baseline are the same version ({baseline.version})")

    status = Status.PASSED
    if problems:
        status = Status.FAILED if rule.severity == "fail" else Status.WARNED
    elif rule.compares_baseline and (baseline.version is None or baseline_value is None) and not (
            rule.min is not None or rule.max is not None):
        status = Status.SKIPPED
    message = "; ".join(problems) if problems else _passed_message(name, candidate, baseline)
    if notes:
        message += " (" + "; ".join(notes) + ")"
    return CheckResult(status=status, value=candidate, baseline=baseline_value, message=message, **common)


def _compare(name: str, rule: Threshold, candidate: float, baseline: Baseline) -> list[str]:
    base = float(baseline.value)  # type: ignore[arg-type]
    improvement = candidate - base if rule.direction == "higher" else base - candidate
    relative = relative_improvement(improvement, base)
    where = f"baseline version {baseline.version} ({_fmt(base)})"
    problems = []
    if baseline.same_as_candidate:
        for key in ("min_delta_abs", "min_delta_rel"):
            required = getattr(rule, key)
            if required is not None and required > 0:
                problems.append(f"{name}: {key} {_fmt(required)} cannot be met: the candidate is the baseline "
                                f"(version {baseline.version}) and cannot improve on itself")
        if problems:
            return problems
    if rule.min_delta_abs is not None and improvement < rule.min_delta_abs - _EPS:
        problems.append(f"{name} {_fmt(candidate)} improves on {where} by {_fmt(improvement)}, "
                        f"required {_fmt(rule.min_delta_abs)}")
    if rule.min_delta_rel is not None and relative < rule.min_delta_rel - _EPS:
        problems.append(f"{name} {_fmt(candidate)} improves on {where} by {_fmt(relative * 100)}%, "
                        f"required {_fmt(rule.min_delta_rel * 100)}%")
    if rule.max_regression_abs is not None and -improvement > rule.max_regression_abs + _EPS:
        problems.append(f"{name} {_fmt(candidate)} is worse than {where} by {_fmt(-improvement)}, "
                        f"tolerated {_fmt(rule.max_regression_abs)}")
    if rule.max_regression_rel is not None and -relative > rule.max_regression_rel + _EPS:
        problems.append(f"{name} {_fmt(candidate)} is worse than {where} by {_fmt(-relative * 100)}%, "
                        f"tolerated {_fmt(rule.max_regression_rel * 100)}%")
    return problems


def _passed_message(name: str, candidate: float, baseline: Baseline) -> str:
    if baseline.value is not None and baseline.version is not None:
        return f"{name} {_fmt(candidate)} (baseline version {baseline.version}: {_fmt(baseline.value)})"
    return f"{name} {_fmt(candidate)}"
