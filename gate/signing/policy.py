"""The `integrity:` section of the gate policy (pure data)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class SignaturePolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    required: bool = True
    method: Literal["key", "certificate", "detached"] = "key"
    # PEM public keys that are trusted to sign (paths are relative to the policy file).
    public_keys: list[str] = Field(default_factory=list)
    # SHA-256 fingerprints ("sha256:<hex>") of trusted public keys (DER SubjectPublicKeyInfo).
    key_fingerprints: list[str] = Field(default_factory=list)
    # certificate method: PEM files holding the trusted root (and intermediate) certificates.
    certificate_chain: list[str] = Field(default_factory=list)
    # Where the signature is: a path inside the model folder, or an absolute/policy-relative path.
    signature: str = "model.sig"
    ignore: list[str] = Field(default_factory=list)


class IntegrityPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    signature: SignaturePolicy | None = None
