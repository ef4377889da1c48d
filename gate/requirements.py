"""Does this environment match the packages the model was logged with?

MLflow writes the model's pip requirements to `requirements.txt` beside `MLmodel`. A model evaluated
with other versions of its libraries (scikit-learn 1.4 pickles under 1.7, another transformers) may
score differently here than where it is served, so the gate says so, by name and version, before it
loads the model. It reads one small text file and the installed distributions' metadata: no model
code runs, and the model process is spared MLflow's own, slower version of this check.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from gate.mlmodel import read_mlmodel
from gate.results import CheckResult, Status

CHECK = "load.requirements"
MAX_LINE = 500  # requirements.txt is tiny; a longer line is not a requirement
MAX_LINES = 2000


@dataclass(frozen=True)
class Mismatch:
    requirement: str  # as written, e.g. "scikit-learn==1.4.2"
    installed: str | None  # None: not installed here

    def describe(self) -> str:
        return f"{self.requirement} (installed: {self.installed or 'none'})"


def find_mismatches(lines: list[str]) -> tuple[list[Mismatch], list[str]]:
    """Requirements the installed distributions do not satisfy, and lines that are not requirements
    this check can judge (URLs, pip options, unparsable text). Environment markers are honoured."""
    from packaging.requirements import InvalidRequirement, Requirement

    mismatches: list[Mismatch] = []
    unjudged: list[str] = []
    for raw in lines:
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-") or len(line) > MAX_LINE:
            unjudged.append(line[:80])
            continue
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            unjudged.append(line[:80])
            continue
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        if requirement.url:  # "name @ URL": what is installed cannot be traced back to the URL
            unjudged.append(line[:80])
            continue
        try:
            installed = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            mismatches.append(Mismatch(line, None))
            continue
        # A local label (+cpu) is ignored by ==X.Y.Z, as pip does; pre-releases count as installed.
        if requirement.specifier and not requirement.specifier.contains(installed, prereleases=True):
            mismatches.append(Mismatch(line, installed))
    return mismatches, unjudged


def _join_continuations(lines: list[str]) -> list[str]:
    """pip reads a line ending in a backslash together with the next one."""
    joined: list[str] = []
    pending = ""
    for line in lines:
        stripped = line.rstrip("\r\n")
        if stripped.endswith("\\"):
            pending += stripped[:-1]
            continue
        joined.append(pending + stripped)
        pending = ""
    if pending:
        joined.append(pending)
    return joined


def python_mismatch(model_dir: Path) -> Mismatch | None:
    """The Python the model was logged with (MLmodel's python_function flavor), when its major.minor
    differs from this interpreter's: pickles and compiled code may not behave the same."""
    meta, _ = read_mlmodel(model_dir)
    try:
        logged = meta["flavors"]["python_function"]["python_version"]  # type: ignore[index]
    except (KeyError, TypeError):
        return None  # no MLmodel or no python_version: nothing to compare (loading will say more)
    if not isinstance(logged, str):
        return None  # MLflow writes a string; an unquoted 3.10 would read as 3.1 and mislead
    here = f"{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}"
    if logged.split(".")[:2] == here.split(".")[:2]:
        return None
    return Mismatch(f"python {logged}", here)


def check_requirements(model_dir: Path, mode: str) -> list[CheckResult]:
    """One `load.requirements` check: passed, warned (mode warn) or failed (mode fail); none for ignore."""
    if mode == "ignore":
        return []
    started = time.perf_counter()
    path = model_dir / "requirements.txt"
    lines: list[str] = []
    if path.is_file():
        try:
            # utf-8-sig: a byte order mark is not part of the first requirement
            with path.open(encoding="utf-8-sig", errors="replace") as handle:
                lines = [line for _, line in zip(range(MAX_LINES + 1), handle)]
        except OSError as error:
            return [CheckResult(CHECK, "load", Status.SKIPPED, f"cannot read requirements.txt: {error.strerror}")]
    mismatches, unjudged = find_mismatches(_join_continuations(lines[:MAX_LINES]))
    if len(lines) > MAX_LINES:
        unjudged.append(f"(everything after line {MAX_LINES})")
    if (python := python_mismatch(model_dir)) is not None:
        mismatches.insert(0, python)
    details = {"mismatches": [m.describe() for m in mismatches], "not_checked": unjudged}
    duration = time.perf_counter() - started
    if not mismatches and not unjudged:
        if not path.is_file():
            return [CheckResult(CHECK, "load", Status.SKIPPED, "the model declares no requirements.txt",
                                duration_s=duration, details=details)]
        return [CheckResult(CHECK, "load", Status.PASSED, "installed packages satisfy the model's requirements.txt",
                            duration_s=duration, details=details)]
    said = []
    if mismatches:
        said.append(f"{len(mismatches)} requirement(s) of the model not met here, so its scores may differ where "
                    f"it is served: {_first(m.describe() for m in mismatches)}")
    if unjudged:
        # In fail mode, a requirement that cannot be verified is not a verified one.
        said.append(f"{len(unjudged)} line(s) of requirements.txt could not be checked: {_first(unjudged)}")
    status = Status.FAILED if mode == "fail" else Status.WARNED
    return [CheckResult(CHECK, "load", status, "; ".join(said), value=len(mismatches) + len(unjudged), threshold=0,
                        duration_s=duration, details=details)]


def _first(items, shown: int = 5) -> str:
    items = list(items)
    return ", ".join(items[:shown]) + (", ..." if len(items) > shown else "")
