"""The `integrity:` section of the gate policy (pure data)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gate.signing.paths import check_ignore_entry

FINGERPRINT = re.compile(r"^sha256:[0-9a-f]{64}$")


class SignaturePolicy(BaseModel):
    # strict: a YAML `true` or "0.9" where a number belongs is an error, not a silent conversion
    model_config = ConfigDict(extra="forbid", strict=True)

    required: bool = True
    # key: OMS bundle signed with an EC key; certificate: OMS bundle with an X.509 chain;
    # detached: one RSA-PSS `<file>.sig` per model file.
    method: Literal["key", "certificate", "detached"] = "key"
    # PEM public keys that are trusted to sign (paths are relative to the policy file).
    public_keys: list[str] = Field(default_factory=list)
    # SHA-256 fingerprints ("sha256:<hex>") of trusted public keys (DER SubjectPublicKeyInfo).
    # They pin keys the signature carries itself (certificate leaf, older bundles' rawBytes);
    # a bundle that names its key only by hint needs the key file in public_keys.
    key_fingerprints: list[str] = Field(default_factory=list)
    # certificate method: PEM files holding the trusted root (and intermediate) certificates.
    certificate_chain: list[str] = Field(default_factory=list)
    # Where the signature is: a path inside the model folder, or an absolute/policy-relative path.
    # Not used by the detached method, whose signatures sit next to each file as `<file>.sig`.
    signature: str = "model.sig"
    # Paths relative to the model folder left out of the signature (exact paths, no globs).
    ignore: list[str] = Field(default_factory=list)

    @field_validator("key_fingerprints")
    @classmethod
    def _fingerprints(cls, value: list[str]) -> list[str]:
        normalized = [v.strip().lower() for v in value]
        bad = [v for v in normalized if not FINGERPRINT.match(v)]
        if bad:
            raise ValueError(f"key fingerprint {bad[0]!r} is not of the form sha256:<64 hex digits>")
        return normalized

    @field_validator("ignore")
    @classmethod
    def _ignore(cls, value: list[str]) -> list[str]:
        return [check_ignore_entry(v) for v in value]

    @model_validator(mode="after")
    def _trust_given(self) -> SignaturePolicy:
        if self.method == "key" and not (self.public_keys or self.key_fingerprints):
            raise ValueError("method key needs public_keys (or key_fingerprints)")
        if self.method == "certificate" and not self.certificate_chain:
            raise ValueError("method certificate needs certificate_chain (the trusted root)")
        if self.method == "detached" and not self.public_keys:
            raise ValueError("method detached needs public_keys")
        return self


class IntegrityPolicy(BaseModel):
    # strict: a YAML `true` or "0.9" where a number belongs is an error, not a silent conversion
    model_config = ConfigDict(extra="forbid", strict=True)

    signature: SignaturePolicy | None = None
