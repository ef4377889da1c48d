"""The `formats:` section of the gate policy (pure data)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class FormatsPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Formats the model may contain; None means every recognised format.
    allowed: list[str] | None = None
    pickle: Literal["deny", "scan", "allow"] = "scan"
    strict: bool = True
    # A pickle covered by a verified signature from a trusted key is accepted without scanning.
    trust_signed_pickles: bool = False
