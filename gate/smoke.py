"""Smoke-case expectations against a model's real outputs (pure: no I/O)."""

from __future__ import annotations

import math
from typing import Any

from gate.policy import SmokeExpect
from gate.results import CheckResult, Status


def _as_array(output: Any) -> Any:
    import numpy as np

    if hasattr(output, "to_numpy"):
        return output.to_numpy()
    try:
        return np.asarray(output)
    except (ValueError, TypeError):
        return np.asarray(output, dtype=object)


def _row_count(output: Any) -> int:
    if hasattr(output, "shape") and len(output.shape) > 0:
        return int(output.shape[0])
    return len(output) if hasattr(output, "__len__") else 1


def _non_finite_count(array: Any) -> int:
    import numpy as np

    if array.dtype.kind in "fc":
        return int((~np.isfinite(array)).sum())
    if array.dtype == object:
        return sum(1 for v in array.ravel() if isinstance(v, float) and not math.isfinite(v))
    return 0


def _values_differ(actual: Any, expected: list[Any], abs_tol: float, rel_tol: float) -> str | None:
    import numpy as np

    got = np.asarray(actual, dtype=object).ravel().tolist()
    want = np.asarray(expected, dtype=object).ravel().tolist()
    if len(got) != len(want):
        return f"expected {len(want)} values, got {len(got)}"
    for index, (g, w) in enumerate(zip(got, want)):
        if isinstance(w, (int, float)) and not isinstance(w, bool) and isinstance(g, (int, float, np.number)):
            if not math.isclose(float(g), float(w), abs_tol=abs_tol, rel_tol=rel_tol):
                return f"value {index} is {float(g):.6g}, expected {w} (abs tol {abs_tol:g}, rel tol {rel_tol:g})"
        elif g != w and str(g) != str(w):
            return f"value {index} is {g!r}, expected {w!r}"
    return None


def evaluate_expectations(name: str, expect: SmokeExpect, output: Any, meta: dict[str, Any]) -> CheckResult:
    """Compare one smoke case's output with its expectations; every failed expectation is named."""
    problems: list[str] = []
    array = _as_array(output)
    rows = _row_count(output)
    if expect.rows is not None and rows != expect.rows:
        problems.append(f"expected {expect.rows} output rows, got {rows}")
    if expect.finite:
        bad = _non_finite_count(array)
        if bad:
            problems.append(f"{bad} output values are NaN or infinite")
    if expect.output_type is not None and meta.get("output_type") != expect.output_type:
        problems.append(f"output type is {meta.get('output_type')}, expected {expect.output_type}")
    if expect.columns is not None:
        columns = list(meta.get("columns") or [])
        if columns != expect.columns:
            problems.append(f"output columns are {columns}, expected {expect.columns}")
    if expect.shape is not None:
        shape = list(meta.get("shape") or list(array.shape))
        matches = len(shape) == len(expect.shape) and all(w is None or w == g for g, w in zip(shape, expect.shape))
        if not matches:
            problems.append(f"output shape is {shape}, expected {expect.shape}")
    if expect.values is not None:
        diff = _values_differ(array, expect.values, expect.tolerance.abs, expect.tolerance.rel)
        if diff:
            problems.append(diff)
    slowest = max(meta.get("call_ms") or [0.0])
    if expect.max_latency_ms is not None and slowest > expect.max_latency_ms:
        problems.append(f"predict took {slowest:.1f} ms, limit {expect.max_latency_ms:g} ms")
    if problems:
        return CheckResult(name=f"smoke.{name}", stage="smoke", status=Status.FAILED,
                           message=f"smoke case {name!r}: " + "; ".join(problems),
                           value=round(slowest, 3), threshold=expect.max_latency_ms,
                           details={"shape": meta.get("shape"), "output_type": meta.get("output_type")})
    return CheckResult(name=f"smoke.{name}", stage="smoke", status=Status.PASSED,
                       message=f"smoke case {name!r}: {rows} row{'' if rows == 1 else 's'} of {meta.get('output_type')} in {slowest:.1f} ms",
                       value=round(slowest, 3), threshold=expect.max_latency_ms,
                       details={"shape": meta.get("shape"), "output_type": meta.get("output_type")})
