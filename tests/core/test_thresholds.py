"""Threshold rules (pure): bounds, baseline deltas, zero/negative baselines, NaN, same version."""

from __future__ import annotations

import math

import pytest

from gate.policy import Threshold
from gate.results import Status
from gate.thresholds import Baseline, evaluate_threshold, relative_improvement

NO_BASELINE = Baseline(version=None, missing_reason="no current champion")


def rule(**kwargs):
    return Threshold(**{"direction": "higher", **kwargs})


def test_absolute_bounds():
    assert evaluate_threshold("accuracy", rule(min=0.9), 0.95, NO_BASELINE).status == Status.PASSED
    low = evaluate_threshold("accuracy", rule(min=0.9), 0.85, NO_BASELINE)
    assert low.status == Status.FAILED and low.message == "accuracy 0.85 is below the minimum 0.9"
    high = evaluate_threshold("rmse", rule(direction="lower", max=1.0), 1.5, NO_BASELINE)
    assert high.status == Status.FAILED and "above the maximum 1" in high.message
    assert evaluate_threshold("accuracy", rule(min=0.9), 0.9, NO_BASELINE).status == Status.PASSED  # bound inclusive


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_candidate_fails_even_as_warning(value):
    check = evaluate_threshold("accuracy", rule(min=0.0, severity="warn"), value, NO_BASELINE)
    assert check.status == Status.FAILED and "not a finite number" in check.message


def test_missing_metric_fails():
    check = evaluate_threshold("f1", rule(min=0.5), None, NO_BASELINE, missing_reason="no predict_proba")
    assert check.status == Status.FAILED and check.message == "f1: metric is missing (no predict_proba)"


def test_warn_severity_warns():
    check = evaluate_threshold("accuracy", rule(min=0.99, severity="warn"), 0.9, NO_BASELINE)
    assert check.status == Status.WARNED and not check.blocking


def test_improvement_and_regression_higher_is_better():
    base = Baseline(version="3", value=0.80)
    assert evaluate_threshold("accuracy", rule(min_delta_abs=0.01), 0.82, base).status == Status.PASSED
    assert evaluate_threshold("accuracy", rule(min_delta_abs=0.05), 0.82, base).status == Status.FAILED
    assert evaluate_threshold("accuracy", rule(min_delta_rel=0.02), 0.82, base).status == Status.PASSED  # +2.5%
    assert evaluate_threshold("accuracy", rule(min_delta_rel=0.03), 0.82, base).status == Status.FAILED
    assert evaluate_threshold("accuracy", rule(max_regression_abs=0.02), 0.79, base).status == Status.PASSED
    worse = evaluate_threshold("accuracy", rule(max_regression_abs=0.02), 0.75, base)
    assert worse.status == Status.FAILED
    assert worse.message == "accuracy 0.75 is worse than baseline version 3 (0.8) by 0.05, tolerated 0.02"
    assert worse.baseline == 0.80


def test_lower_is_better_direction():
    base = Baseline(version="2", value=10.0)
    assert evaluate_threshold("rmse", rule(direction="lower", max_regression_rel=0.1), 10.9, base).status == Status.PASSED
    assert evaluate_threshold("rmse", rule(direction="lower", max_regression_rel=0.1), 11.5, base).status == Status.FAILED
    assert evaluate_threshold("rmse", rule(direction="lower", min_delta_abs=1), 8.5, base).status == Status.PASSED


def test_zero_baseline_rule():
    assert relative_improvement(0.0, 0.0) == 0.0
    assert relative_improvement(0.1, 0.0) == math.inf
    assert relative_improvement(-0.1, 0.0) == -math.inf
    zero = Baseline(version="1", value=0.0)
    assert evaluate_threshold("r2", rule(min_delta_rel=0.5), 0.2, zero).status == Status.PASSED
    assert evaluate_threshold("r2", rule(max_regression_rel=10.0), -0.01, zero).status == Status.FAILED
    assert evaluate_threshold("r2", rule(max_regression_rel=0.0), 0.0, zero).status == Status.PASSED


def test_negative_baseline_uses_its_magnitude():
    # r2 of -0.5 improving to -0.25 is a 50% improvement, not a -50% one.
    assert relative_improvement(0.25, -0.5) == pytest.approx(0.5)
    base = Baseline(version="4", value=-0.5)
    assert evaluate_threshold("r2", rule(min_delta_rel=0.4), -0.25, base).status == Status.PASSED


def test_missing_baseline_skip_or_fail():
    skip = evaluate_threshold("accuracy", rule(min_delta_abs=0.0), 0.9, NO_BASELINE)
    assert skip.status == Status.SKIPPED and "baseline comparison skipped: no current champion" in skip.message
    fail = evaluate_threshold("accuracy", rule(min_delta_abs=0.0, on_missing_baseline="fail"), 0.9, NO_BASELINE)
    assert fail.status == Status.FAILED
    bounded = evaluate_threshold("accuracy", rule(min=0.95, min_delta_abs=0.0), 0.9, NO_BASELINE)
    assert bounded.status == Status.FAILED  # bounds still apply without a baseline


def test_same_version_never_passes_positive_improvement():
    same = Baseline(version="7", value=0.9, same_as_candidate=True)
    for required in ({"min_delta_abs": 0.001}, {"min_delta_rel": 0.01}):
        check = evaluate_threshold("accuracy", rule(**required), 0.9, same)
        assert check.status == Status.FAILED and "cannot improve on itself" in check.message
    tolerant = evaluate_threshold("accuracy", rule(max_regression_abs=0.0), 0.9, same)
    assert tolerant.status == Status.PASSED and "same version (7)" in tolerant.message


def test_non_finite_baseline_fails():
    check = evaluate_threshold("accuracy", rule(max_regression_abs=0.1), 0.9, Baseline(version="2", value=math.nan))
    assert check.status == Status.FAILED and "baseline (version 2) has nan" in check.message
