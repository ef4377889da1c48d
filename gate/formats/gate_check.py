"""The gate's `formats` stage: the same inspection `model-gate scan` runs, as CheckResults."""

from __future__ import annotations

import time
from pathlib import Path

from gate.formats.decide import FileVerdict, judge
from gate.formats.inspect import inspect_tree
from gate.formats.policy import FormatsPolicy
from gate.results import CheckResult, Status

STAGE = "formats"


def run_scan(policy: FormatsPolicy, path: Path, signed_files: frozenset[str] = frozenset()) -> list[FileVerdict]:
    reports = inspect_tree(path, allow_globals=tuple(policy.allow_globals), max_header=policy.max_header_bytes)
    return [judge(report, policy, signed=report.path in signed_files) for report in reports]


def check_formats(policy: FormatsPolicy, model_dir: Path, *,
                  signed_files: frozenset[str] = frozenset()) -> list[CheckResult]:
    """Runs after the signature check and before anything is loaded. Never loads or executes anything."""
    started = time.monotonic()
    verdicts = run_scan(policy, Path(model_dir), signed_files)
    elapsed = time.monotonic() - started
    bad = [v for v in verdicts if not v.ok]
    details = {
        "policy": {"pickle": policy.pickle, "strict": policy.strict, "allowed": policy.allowed,
                   "allow_globals": policy.allow_globals, "trust_signed_pickles": policy.trust_signed_pickles},
        "files": [
            {"path": v.report.path, "format": v.report.format, "detail": v.report.detail, "size": v.report.size,
             "status": v.status, "pickle_mode": v.pickle_mode, "globals": v.report.globals,
             "problems": v.problems, "notes": v.notes}
            for v in verdicts
        ],
    }
    if bad:
        summary = CheckResult(
            "formats", STAGE, Status.FAILED,
            f"{len(bad)} of {len(verdicts)} files are unsafe or invalid: {', '.join(v.report.path for v in bad)}",
            value=len(bad), threshold=0, duration_s=elapsed, details=details)
    else:
        weights = sum(1 for v in verdicts if v.report.format not in ("text", "empty"))
        summary = CheckResult("formats", STAGE, Status.PASSED,
                              f"{len(verdicts)} files checked ({weights} non-text), all safe and valid",
                              value=0, threshold=0, duration_s=elapsed, details=details)
    per_file = [
        CheckResult(f"formats.{v.report.path}", STAGE, Status.FAILED, "; ".join(v.problems),
                    details={"format": v.report.format, "problems": v.problems})
        for v in bad
    ]
    return [summary, *per_file]
