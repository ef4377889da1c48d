"""Check outcomes: the single data type every stage of the gate reports in.

Pure data, no I/O. Reports, the decision and the Action outputs are all
computed from a list of CheckResult.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any


class Status(str, Enum):
    PASSED = "passed"
    FAILED = "failed"  # counts against the model when severity is "fail"
    WARNED = "warned"  # a failed check whose severity is "warn"
    SKIPPED = "skipped"  # not applicable (e.g. no baseline and on_missing_baseline: skip)
    ERROR = "error"  # the check itself could not run (crash, timeout); blocks like FAILED


BLOCKING = {Status.FAILED, Status.ERROR}


@dataclass(frozen=True)
class CheckResult:
    """One check: what was looked at, what was found, what was expected."""

    name: str  # stable id, e.g. "threshold.accuracy", "integrity.signature"
    stage: str  # resolve | integrity | formats | load | smoke | evaluation | thresholds | promotion
    status: Status
    message: str
    value: Any = None
    threshold: Any = None
    baseline: Any = None
    duration_s: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def blocking(self) -> bool:
        return self.status in BLOCKING

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status.value
        return data
