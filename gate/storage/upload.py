"""Upload a model folder to s3://BUCKET/{prefix}/{name}/{version}/ as an immutable version.

Every object carries a SHA-256 checksum that S3 stores and checks; large files go in parallel parts.
Objects are written with `If-None-Match: *` so an existing version is never overwritten (unless
force), and the manifest is written last: no manifest means an incomplete version.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gate.errors import GateError, StorageError, UsageError
from gate.storage.checksums import sha256_b64
from gate.storage.client import error_code, make_client, translate
from gate.storage.layout import MANIFEST_NAME, S3Location, UnsafeKey, safe_relative_path, version_location
from gate.storage.manifest import Manifest, ManifestFile, build_manifest
from gate.storage.progress import Progress
from gate.storage.transfer import BoundedPool, with_stream_retries

log = logging.getLogger(__name__)

MiB = 2**20
DEFAULT_PART_SIZE = 8 * MiB
DEFAULT_THRESHOLD = 16 * MiB
MAX_PARTS = 10_000  # S3 limit per multipart upload
_PRECONDITION = {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}


@dataclass(frozen=True)
class LocalFile:
    relative: str
    path: Path
    size: int


@dataclass(frozen=True)
class UploadResult:
    location: S3Location
    manifest: Manifest
    seconds: float

    @property
    def total_size(self) -> int:
        return self.manifest.total_size


def list_local_files(root: Path) -> list[LocalFile]:
    """Every file below root, subfolders included, with POSIX relative paths, sorted."""
    if not root.is_dir():
        raise UsageError(f"{root}: not a folder")
    found: list[LocalFile] = []
    for folder, dirnames, filenames in os.walk(root):
        for dirname in dirnames:
            if (Path(folder) / dirname).is_symlink():
                raise UsageError(f"{Path(folder) / dirname}: symlinked folders are not uploaded; copy the folder")
        for filename in filenames:
            path = Path(folder) / filename
            relative = path.relative_to(root).as_posix()
            if relative == MANIFEST_NAME:
                raise UsageError(f"{path}: {MANIFEST_NAME} is reserved for the manifest model-gate writes")
            try:
                safe_relative_path(relative)
            except UnsafeKey as error:
                raise UsageError(f"{path}: file name cannot be stored safely: {error.reason}") from None
            if not path.is_file():
                raise UsageError(f"{path}: not a regular file")
            found.append(LocalFile(relative, path, path.stat().st_size))
    if not found:
        raise UsageError(f"{root}: the folder has no files to upload")
    return sorted(found, key=lambda f: f.relative)


def choose_part_size(size: int, part_size: int) -> int:
    """The part size, grown in whole MiB when the file would need more than 10,000 parts."""
    needed = -(-size // MAX_PARTS)
    return max(part_size, -(-needed // MiB) * MiB)


@dataclass
class _Multipart:
    file: LocalFile
    key: str
    upload_id: str
    part_count: int
    part_size: int
    parts: dict[int, dict[str, Any]] = field(default_factory=dict)
    sha256_hex: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    completed: bool = False


class _Uploader:
    def __init__(self, client: Any, location: S3Location, *, force: bool, workers: int, part_size: int,
                 threshold: int, progress: Progress) -> None:
        self.client = client
        self.location = location
        self.force = force
        self.part_size = part_size
        self.threshold = threshold
        self.progress = progress
        self.pool = BoundedPool(workers, slots=workers + 2)
        self.entries: dict[str, ManifestFile] = {}
        self.entries_lock = threading.Lock()
        self.open_uploads: list[_Multipart] = []

    def conditional(self) -> dict[str, str]:
        return {} if self.force else {"IfNoneMatch": "*"}

    def where(self, key: str) -> str:
        return f"s3://{self.location.bucket}/{key}"

    def run(self, files: list[LocalFile]) -> None:
        try:
            for item in files:
                if item.size <= self.threshold:
                    self._single(item)
                else:
                    self._multipart(item)
            self.pool.wait()
        except BaseException:
            self.pool.shutdown()
            self._abort_open_uploads()
            raise
        self.pool.shutdown()

    # ---- small files: one PUT each
    def _single(self, item: LocalFile) -> None:
        with item.path.open("rb") as handle:
            data = handle.read(item.size + 1)
        if len(data) != item.size:
            raise UsageError(f"{item.path}: file changed while uploading")
        self.pool.submit(self._put_single, item, data)

    def _put_single(self, item: LocalFile, data: bytes) -> None:
        key = self.location.key(item.relative)
        digest = hashlib.sha256(data).digest()
        checksum = base64.b64encode(digest).decode()
        try:
            response = with_stream_retries(lambda: self.client.put_object(
                Bucket=self.location.bucket, Key=key, Body=data, ChecksumAlgorithm="SHA256", ChecksumSHA256=checksum,
                **self.conditional()))
        except Exception as error:
            raise self._error(error, key) from None
        finally:
            self.pool.release()
        _check_echo(response, checksum, self.where(key))
        self._record(ManifestFile(path=item.relative, size=item.size, sha256=digest.hex()))
        self.progress.add(item.size)

    # ---- large files: parts read in order here (for the whole-file digest), sent in parallel
    def _multipart(self, item: LocalFile) -> None:
        key = self.location.key(item.relative)
        part_size = choose_part_size(item.size, self.part_size)
        try:
            created = self.client.create_multipart_upload(
                Bucket=self.location.bucket, Key=key, ChecksumAlgorithm="SHA256")
        except Exception as error:
            raise self._error(error, key) from None
        state = _Multipart(item, key, created["UploadId"], -(-item.size // part_size), part_size)
        self.open_uploads.append(state)
        whole = hashlib.sha256()
        with item.path.open("rb") as handle:
            for number in range(1, state.part_count + 1):
                data = handle.read(part_size)
                whole.update(data)
                if number == state.part_count:
                    if handle.read(1) or whole_size(number, part_size, data) != item.size:
                        raise UsageError(f"{item.path}: file changed while uploading")
                    state.sha256_hex = whole.hexdigest()
                self.pool.submit(self._put_part, state, number, data)

    def _put_part(self, state: _Multipart, number: int, data: bytes) -> None:
        checksum = sha256_b64(data)
        try:
            response = with_stream_retries(lambda: self.client.upload_part(
                Bucket=self.location.bucket, Key=state.key, UploadId=state.upload_id, PartNumber=number,
                Body=data, ChecksumAlgorithm="SHA256", ChecksumSHA256=checksum))
        except Exception as error:
            raise self._error(error, state.key) from None
        finally:
            self.pool.release()
        _check_echo(response, checksum, f"{self.where(state.key)} part {number}")
        self.progress.add(len(data))
        with state.lock:
            state.parts[number] = {"PartNumber": number, "ETag": response["ETag"], "ChecksumSHA256": checksum}
            last = len(state.parts) == state.part_count
        if last:
            self._complete(state)

    def _complete(self, state: _Multipart) -> None:
        parts = [state.parts[n] for n in sorted(state.parts)]
        try:
            self.client.complete_multipart_upload(
                Bucket=self.location.bucket, Key=state.key, UploadId=state.upload_id,
                MultipartUpload={"Parts": parts}, **self.conditional())
        except Exception as error:
            raise self._error(error, state.key) from None
        state.completed = True
        assert state.sha256_hex is not None
        self._record(ManifestFile(path=state.file.relative, size=state.file.size, sha256=state.sha256_hex,
                                  part_size=state.part_size))

    def _record(self, entry: ManifestFile) -> None:
        with self.entries_lock:
            self.entries[entry.path] = entry

    def _abort_open_uploads(self) -> None:
        for state in self.open_uploads:
            if not state.completed:
                try:
                    self.client.abort_multipart_upload(
                        Bucket=self.location.bucket, Key=state.key, UploadId=state.upload_id)
                except Exception:  # noqa: BLE001 - best effort; S3 lifecycle rules clean the rest
                    log.warning("could not abort the multipart upload of %s", self.where(state.key))

    def _error(self, error: BaseException, key: str) -> GateError:
        if error_code(error) in _PRECONDITION:
            return UsageError(f"{self.where(key)} already exists: model versions are immutable",
                              hint="upload a new version, or pass --force to replace this one")
        return translate(error, self.where(key))


def whole_size(count: int, part_size: int, last: bytes) -> int:
    return (count - 1) * part_size + len(last)


def _check_echo(response: dict, sent: str, where: str) -> None:
    stored = response.get("ChecksumSHA256")
    if stored and stored != sent:
        raise StorageError(f"{where}: the store recorded checksum {stored}, expected {sent}")


def upload_model(local_dir: Path, *, bucket: str, name: str, version: str, prefix: str = "models",
                 endpoint_url: str | None = None, force: bool = False, workers: int = 8,
                 part_size: int = DEFAULT_PART_SIZE, multipart_threshold: int = DEFAULT_THRESHOLD,
                 progress_mode: str = "auto", client: Any = None) -> UploadResult:
    """Upload a folder tree as one immutable model version; returns what the manifest records."""
    if part_size < 5 * MiB:
        raise UsageError(f"part size {part_size} is below the S3 minimum of 5 MiB")
    if workers < 1:
        raise UsageError(f"workers must be at least 1, got {workers}")
    location = version_location(bucket, name, version, prefix)
    files = list_local_files(Path(local_dir))
    client = client or make_client(endpoint_url, bucket=bucket, max_pool=workers + 4)
    start = time.monotonic()
    _prepare_version(client, location, force)
    progress = Progress(f"upload {location.uri}", sum(f.size for f in files), mode=progress_mode)
    uploader = _Uploader(client, location, force=force, workers=workers, part_size=part_size,
                         threshold=multipart_threshold, progress=progress)
    try:
        uploader.run(files)
    finally:
        progress.close()
    manifest = build_manifest(name, version, list(uploader.entries.values()))
    body = manifest.to_bytes()
    try:
        client.put_object(Bucket=bucket, Key=location.manifest_key, Body=body, ContentType="application/json",
                          ChecksumAlgorithm="SHA256", ChecksumSHA256=sha256_b64(body), **uploader.conditional())
    except Exception as error:
        raise uploader._error(error, location.manifest_key) from None
    return UploadResult(location, manifest, time.monotonic() - start)


def _prepare_version(client: Any, location: S3Location, force: bool) -> None:
    """Refuse an existing version (or, with force, delete it: manifest first, so it never looks complete)."""
    try:
        client.head_bucket(Bucket=location.bucket)
    except Exception as error:
        if error_code(error) in ("404", "NoSuchBucket", "NotFound"):
            raise StorageError(f"bucket {location.bucket} does not exist",
                               hint="create it first or check --bucket and the endpoint") from None
        raise translate(error, f"s3://{location.bucket}") from None
    keys = list_keys(client, location, limit=None if force else 1)
    if not keys:
        return
    if not force:
        complete = object_exists(client, location.bucket, location.manifest_key)
        if complete:
            raise UsageError(f"{location.uri} already exists: model versions are immutable",
                             hint="upload a new version, or pass --force to replace this one")
        raise UsageError(f"{location.uri} holds objects but no manifest: an earlier upload was interrupted",
                         hint="pass --force to replace the incomplete version")
    log.warning("--force: replacing %d existing objects under %s", len(keys), location.uri)
    ordered = [location.manifest_key] + [k for k in keys if k != location.manifest_key]
    try:
        for start in range(0, len(ordered), 1000):
            batch = ordered[start:start + 1000]
            client.delete_objects(Bucket=location.bucket,
                                  Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True})
    except Exception as error:
        raise translate(error, location.uri) from None


def list_keys(client: Any, location: S3Location, limit: int | None = None) -> list[str]:
    return [item["Key"] for item in list_objects(client, location, limit)]


def list_objects(client: Any, location: S3Location, limit: int | None = None) -> list[dict]:
    found: list[dict] = []
    try:
        paginator = client.get_paginator("list_objects_v2")
        config = {"PageSize": limit} if limit else {}
        for page in paginator.paginate(Bucket=location.bucket, Prefix=location.prefix, PaginationConfig=config):
            found.extend(page.get("Contents", []))
            if limit and len(found) >= limit:
                return found[:limit]
    except Exception as error:
        raise translate(error, location.uri) from None
    return found


def object_exists(client: Any, bucket: str, key: str) -> bool:
    try:
        client.head_object(Bucket=bucket, Key=key)
        return True
    except Exception as error:
        if error_code(error) in ("404", "NoSuchKey", "NotFound"):
            return False
        raise translate(error, f"s3://{bucket}/{key}") from None
