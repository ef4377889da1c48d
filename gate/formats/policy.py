"""The `formats:` section of the gate policy (pure data)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gate.formats.detect import FORMATS
from gate.formats.safetensors_check import DEFAULT_MAX_HEADER


class FormatsPolicy(BaseModel):
    # strict: a YAML `true` or "0.9" where a number belongs is an error, not a silent conversion
    model_config = ConfigDict(extra="forbid", strict=True)

    # Weight formats the model may contain; None means every recognised format.
    # Text files (configs, tokenizers, MLmodel, requirements) are never weights and always allowed.
    allowed: list[str] | None = None
    # deny: any pickle fails. scan: pickles pass only if every global is on the allowlist
    # (strict) or at least none is on the denylist (strict: false). allow: only denylisted fail.
    pickle: Literal["deny", "scan", "allow"] = "scan"
    strict: bool = True
    # Extra "module.name" patterns (fnmatch, `*` crosses dots) a pickle may import,
    # e.g. ["sklearn.*", "numpy.*", "scipy.sparse.*"]. The denylist always wins.
    allow_globals: list[str] = Field(default_factory=list)
    # A pickle covered by a verified signature from a trusted key is treated as `pickle: allow`
    # (its denylisted globals still fail).
    trust_signed_pickles: bool = False
    max_header_bytes: int = Field(default=DEFAULT_MAX_HEADER, gt=0)

    @field_validator("allowed")
    @classmethod
    def _known_formats(cls, value: list[str] | None) -> list[str] | None:
        for name in value or []:
            if name not in FORMATS:
                raise ValueError(f"unknown format {name!r}; choose from {', '.join(FORMATS)}")
        return value

    @field_validator("allow_globals")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str]:
        for pattern in value:
            module = pattern.split(".", 1)[0]
            if any(c.isspace() for c in pattern) or not module or any(c in module for c in "*?["):
                raise ValueError(
                    f"allow_globals pattern {pattern!r} must start with a plain top-level module, "
                    "e.g. 'sklearn.*' (to accept every pickle use pickle: allow)"
                )
            if "." not in pattern:
                raise ValueError(f"allow_globals pattern {pattern!r} names a module, which matches no global: "
                                 f"use '{pattern}.*' or an exact 'module.name'")
            if pattern.count("[") != pattern.count("]"):
                raise ValueError(f"allow_globals pattern {pattern!r} has an unclosed '['")
        return value
