"""The manifest object: the file list of a complete version, written last (pure, pydantic)."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gate.errors import RejectedError
from gate.storage.layout import UnsafeKey, safe_relative_path

FORMAT = "model-gate.manifest/v1"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class ManifestFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str  # POSIX path relative to the version folder
    size: int = Field(ge=0)
    sha256: str  # hex digest of the whole file
    part_size: int | None = Field(default=None, gt=0)  # set when uploaded in parts

    @field_validator("sha256")
    @classmethod
    def _hex(cls, value: str) -> str:
        if not _HEX64.match(value):
            raise ValueError("sha256 must be 64 lowercase hex digits")
        return value

    @field_validator("path")
    @classmethod
    def _safe(cls, value: str) -> str:
        try:
            safe_relative_path(value)
        except UnsafeKey as error:
            raise ValueError(f"unsafe path: {error}") from None
        return value


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    format: str = FORMAT
    name: str
    version: str
    created: str
    files: list[ManifestFile]

    @field_validator("format")
    @classmethod
    def _known(cls, value: str) -> str:
        if value != FORMAT:
            raise ValueError(f"unknown manifest format {value!r}, expected {FORMAT!r}")
        return value

    @field_validator("files")
    @classmethod
    def _unique(cls, files: list[ManifestFile]) -> list[ManifestFile]:
        seen: set[str] = set()
        for item in files:
            if item.path in seen:
                raise ValueError(f"path {item.path!r} is listed twice")
            seen.add(item.path)
        return files

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files)

    def by_path(self) -> dict[str, ManifestFile]:
        return {f.path: f for f in self.files}

    def to_bytes(self) -> bytes:
        return json.dumps(self.model_dump(), indent=2, sort_keys=True).encode() + b"\n"


def build_manifest(name: str, version: str, files: list[ManifestFile], now: datetime | None = None) -> Manifest:
    created = (now or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return Manifest(name=name, version=version, created=created, files=sorted(files, key=lambda f: f.path))


def parse_manifest(data: bytes, where: str) -> Manifest:
    """A manifest from its bytes; an unreadable one rejects the version (it may be tampered)."""
    try:
        return Manifest.model_validate_json(data)
    except ValidationError as error:
        first = error.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise RejectedError(f"{where}: invalid manifest at {loc}: {first['msg']}") from None
