"""Turn inspected files into verdicts under a FormatsPolicy. Pure logic, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field

from gate.formats.detect import WEIGHT_FORMATS
from gate.formats.inspect import FileReport
from gate.formats.policy import FormatsPolicy


@dataclass
class FileVerdict:
    report: FileReport
    problems: list[str] = field(default_factory=list)  # any problem rejects the model
    notes: list[str] = field(default_factory=list)  # shown, never blocking
    pickle_mode: str = ""  # how pickles in this file were judged

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def status(self) -> str:
        if self.ok:
            return "ok"
        return "invalid" if self.report.errors and not self.report.findings else "unsafe"


def judge(report: FileReport, policy: FormatsPolicy, *, signed: bool = False) -> FileVerdict:
    verdict = FileVerdict(report, notes=list(report.warnings))
    if report.errors:
        verdict.problems.extend(f"{report.path}: {error}" for error in report.errors)
    if policy.allowed is not None and report.format in WEIGHT_FORMATS and report.format not in policy.allowed:
        verdict.problems.append(f"{report.path}: format {report.format} is not in formats.allowed "
                                f"({', '.join(policy.allowed) or 'empty'})")
    if not report.has_pickle and not report.findings:
        return verdict
    mode = policy.pickle
    if signed and policy.trust_signed_pickles:
        mode = "allow (signed by a trusted key)"
    verdict.pickle_mode = mode
    if mode == "deny" and report.has_pickle:
        verdict.problems.append(f"{report.path}: contains a pickle and formats.pickle is deny")
    for finding in report.findings:
        always = finding.verdict in ("denied", "unresolved")
        blocking = always or (mode == "scan" and policy.strict)
        (verdict.problems if blocking else verdict.notes).append(finding.message())
    return verdict
