"""Exit codes and the error hierarchy.

Every error a user can cause or meet derives from GateError and carries the
exit code the CLI returns for it. The CLI prints `str(error)` as one line;
tracebacks are shown only with --verbose.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    PASSED = 0  # gate passed (promoted, or would have been in a dry run)
    REJECTED = 1  # the gate ran and the model failed a check
    USAGE = 2  # bad command line, policy, key or other input
    INFRA = 3  # registry, storage or network could not be reached or answered badly


class GateError(Exception):
    """Base of every error the CLI reports as one line."""

    exit_code: ExitCode = ExitCode.USAGE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint

    def __str__(self) -> str:  # one line, hint appended
        text = super().__str__().replace("\n", " ")
        return f"{text} ({self.hint})" if self.hint else text


class UsageError(GateError):
    """Bad arguments or input files."""


class PolicyError(UsageError):
    """The policy file is unreadable or invalid."""


class RejectedError(GateError):
    """The model was examined and failed (tampered, unsafe, invalid)."""

    exit_code = ExitCode.REJECTED


class InfraError(GateError):
    """The registry, object store or network failed."""

    exit_code = ExitCode.INFRA


class RegistryError(InfraError):
    """The model registry could not be reached or answered unexpectedly."""


class StorageError(InfraError):
    """Object storage could not be reached or answered unexpectedly."""


class InternalError(GateError):
    """A bug or an unexpected library failure: never reported as a verdict on the model."""

    exit_code = ExitCode.INFRA
