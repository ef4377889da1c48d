"""Download a model version from S3 with parallel ranged GETs, verifying every byte on the way in.

While ranges arrive (in any order) they are written in place and fed, in file order, to SHA-256
(plus the per-part digests of a multipart object, or CRC32). Each file is then checked against the
manifest and the checksum S3 stored, so the digests returned are ready for the signature check with
no second pass over the files. Files land in a staging folder and move to their final names only
after every file is verified: a failure never leaves a half-written or unverified file behind.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gate.errors import RejectedError, StorageError, UsageError
from gate.storage.checksums import OrderedFeeder, StreamDigests, split_stored_checksum
from gate.storage.client import error_code, make_client, translate
from gate.storage.layout import MANIFEST_NAME, S3Location, UnsafeKey, parse_s3_uri, safe_relative_path
from gate.storage.manifest import Manifest, ManifestFile, parse_manifest
from gate.storage.progress import Progress
from gate.storage.transfer import BoundedPool, with_stream_retries
from gate.storage.upload import list_objects

log = logging.getLogger(__name__)

MiB = 2**20
DEFAULT_CHUNK = 8 * MiB
STAGING_PREFIX = ".model-gate-partial-"


@dataclass(frozen=True)
class DownloadResult:
    path: Path
    digests: dict[str, str]  # POSIX relative path -> SHA-256 hex, computed while streaming
    manifest: Manifest | None = None
    total_size: int = 0
    seconds: float = 0.0
    verified: dict[str, list[str]] = field(default_factory=dict)  # path -> what it was checked against


@dataclass
class _Remote:
    relative: str
    key: str
    size: int
    expected: ManifestFile | None
    etag: str = ""
    stored_sha256: str | None = None
    stored_crc32: str | None = None
    part_size: int | None = None  # set only when per-part digests are needed for a composite checksum


def download_model(uri: str, dest: Path, *, endpoint_url: str | None = None, require_manifest: bool = False,
                   overwrite: bool = False, workers: int = 8, chunk_size: int = DEFAULT_CHUNK,
                   progress_mode: str = "auto", client: Any = None) -> DownloadResult:
    """Download s3://BUCKET/PREFIX (a model version folder, with or without manifest) into dest.

    Returns the SHA-256 of every file, computed as the bytes streamed in. Raises StorageError for
    infrastructure failures, RejectedError for a checksum/manifest mismatch or an unsafe key,
    UsageError for a bad URI, endpoint or destination.
    """
    location = parse_s3_uri(uri)
    if chunk_size < 64 * 1024:
        raise UsageError(f"chunk size {chunk_size} is too small (minimum 64 KiB)")
    dest = Path(dest)
    _check_destination(dest, overwrite)
    client = client or make_client(endpoint_url, bucket=location.bucket, max_pool=workers + 4)
    start = time.monotonic()
    listing = list_objects(client, location)
    if not listing:
        raise StorageError(f"no model version at {location.uri} (nothing stored under that prefix)",
                           hint="check the name and version, or list the bucket")
    manifest = _read_manifest(client, location, listing)
    if manifest is None and require_manifest:
        raise RejectedError(f"{location.uri} has no manifest: the upload was interrupted or not made by model-gate",
                            hint="re-upload the version, or pass --allow-missing-manifest")
    remotes = _plan(location, listing, manifest)
    dest.mkdir(parents=True, exist_ok=True)
    staging = dest / f"{STAGING_PREFIX}{uuid.uuid4().hex[:12]}"
    staging.mkdir()
    progress = Progress(f"download {location.uri}", sum(r.size for r in remotes), mode=progress_mode)
    try:
        downloader = _Downloader(client, location, staging, workers, chunk_size, progress)
        results = downloader.run(remotes)
        _move_into_place(staging, dest, [r.relative for r in remotes])
    finally:
        progress.close()
        shutil.rmtree(staging, ignore_errors=True)
    digests = {rel: d.sha256_hex for rel, (d, _) in sorted(results.items())}
    verified = {rel: checks for rel, (_, checks) in sorted(results.items())}
    return DownloadResult(dest, digests, manifest, sum(r.size for r in remotes), time.monotonic() - start, verified)


def _check_destination(dest: Path, overwrite: bool) -> None:
    if dest.exists() and not dest.is_dir():
        raise UsageError(f"{dest}: destination exists and is not a folder")
    if dest.is_dir() and not overwrite and any(p for p in dest.iterdir() if not p.name.startswith(STAGING_PREFIX)):
        raise UsageError(f"{dest}: destination folder is not empty", hint="choose an empty folder or pass --force")


def _read_manifest(client: Any, location: S3Location, listing: list[dict]) -> Manifest | None:
    if not any(item["Key"] == location.manifest_key for item in listing):
        return None
    where = f"s3://{location.bucket}/{location.manifest_key}"
    try:
        response = client.get_object(Bucket=location.bucket, Key=location.manifest_key)
        data = response["Body"].read(16 * MiB + 1)
    except Exception as error:
        raise translate(error, where) from None
    if len(data) > 16 * MiB:
        raise RejectedError(f"{where}: manifest is larger than 16 MiB")
    return parse_manifest(data, where)


def _plan(location: S3Location, listing: list[dict], manifest: Manifest | None) -> list[_Remote]:
    """Objects to fetch, each with what it must match; refuses unsafe keys and manifest mismatches."""
    expected = manifest.by_path() if manifest else {}
    remotes: list[_Remote] = []
    for item in listing:
        key = item["Key"]
        relative = key[len(location.prefix):]
        if relative == MANIFEST_NAME:
            continue
        if relative.endswith("/") and item.get("Size", 0) == 0:
            continue  # a "folder" marker some tools create
        try:
            safe_relative_path(relative)
        except UnsafeKey as error:
            raise RejectedError(f"s3://{location.bucket}/{key}: object key would escape the destination "
                                f"folder ({error.reason})") from None
        if manifest is not None and relative not in expected:
            raise RejectedError(f"s3://{location.bucket}/{key}: object is not listed in the manifest "
                                "(added after the upload?)")
        entry = expected.get(relative)
        if entry is not None and entry.size != item["Size"]:
            raise RejectedError(f"s3://{location.bucket}/{key}: size {item['Size']} differs from the "
                                f"manifest ({entry.size})")
        remotes.append(_Remote(relative, key, int(item["Size"]), entry))
    present = {r.relative for r in remotes}
    missing = sorted(set(expected) - present)
    if missing:
        raise RejectedError(f"s3://{location.bucket}/{location.key(missing[0])}: listed in the manifest "
                            f"but missing from the store ({len(missing)} missing)")
    _check_no_collisions(location, remotes)
    return remotes


def _check_no_collisions(location: S3Location, remotes: list[_Remote]) -> None:
    """A key that is both a file and a folder ('a' and 'a/b') cannot be written locally."""
    files = {r.relative for r in remotes}
    for remote in remotes:
        parts = remote.relative.split("/")
        for depth in range(1, len(parts)):
            if "/".join(parts[:depth]) in files:
                raise RejectedError(f"s3://{location.bucket}/{remote.key}: a file and a folder share the "
                                    f"name {'/'.join(parts[:depth])!r}")


class _FileJob:
    """One file being assembled: ranges are written in place and hashed in order."""

    def __init__(self, remote: _Remote, path: Path, release: Any) -> None:
        self.remote = remote
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        self.digests = StreamDigests(part_size=remote.part_size, crc32=remote.stored_crc32 is not None)
        self.feeder = OrderedFeeder(self.digests.update, on_flushed=release)
        self.chunks = 0
        self.lock = threading.Lock()
        self.closed = False

    def close(self) -> None:
        with self.lock:
            if not self.closed:
                os.close(self.fd)
                self.closed = True


class _Downloader:
    def __init__(self, client: Any, location: S3Location, staging: Path, workers: int, chunk_size: int,
                 progress: Progress) -> None:
        self.client = client
        self.location = location
        self.staging = staging
        self.workers = workers
        self.chunk_size = chunk_size
        self.progress = progress
        self.pool = BoundedPool(workers, slots=workers + 2)
        self.jobs: list[_FileJob] = []
        self.results: dict[str, tuple[StreamDigests, list[str]]] = {}
        self.results_lock = threading.Lock()

    def where(self, remote: _Remote) -> str:
        return f"s3://{self.location.bucket}/{remote.key}"

    def run(self, remotes: list[_Remote]) -> dict[str, tuple[StreamDigests, list[str]]]:
        try:
            self.pool.run_now(self._head, remotes)
            for remote in remotes:
                self._schedule(remote)
            self.pool.wait()
        finally:
            self.pool.shutdown()
            for job in self.jobs:
                job.close()
        return self.results

    def _head(self, remote: _Remote) -> None:
        """ETag (pins every range to one object version), stored checksum, and part layout."""
        try:
            head = self.client.head_object(Bucket=self.location.bucket, Key=remote.key, ChecksumMode="ENABLED")
        except Exception as error:
            if error_code(error) in ("404", "NoSuchKey", "NotFound"):
                raise RejectedError(f"{self.where(remote)}: object disappeared while downloading") from None
            raise translate(error, self.where(remote)) from None
        if int(head["ContentLength"]) != remote.size:
            raise RejectedError(f"{self.where(remote)}: object changed while downloading (size)")
        remote.etag = head["ETag"]
        remote.stored_sha256 = head.get("ChecksumSHA256")
        remote.stored_crc32 = head.get("ChecksumCRC32")
        parts = _etag_parts(remote.etag)
        # A composite (multipart) checksum needs per-part digests: a second SHA-256 over every byte.
        # With a manifest entry the whole-file SHA-256 already pins the content, so skip that cost.
        if remote.stored_sha256 and parts and remote.expected is None:
            remote.part_size = self._part_size(remote, parts)

    def _part_size(self, remote: _Remote, parts: int) -> int | None:
        if remote.expected is not None and remote.expected.part_size:
            return remote.expected.part_size
        try:
            head = self.client.head_object(Bucket=self.location.bucket, Key=remote.key, PartNumber=1)
        except Exception as error:
            raise translate(error, self.where(remote)) from None
        return int(head["ContentLength"]) or None

    def _schedule(self, remote: _Remote) -> None:
        job = _FileJob(remote, self.staging / remote.relative, self.pool.release)
        self.jobs.append(job)
        if remote.size == 0:
            self._finish(job)
            return
        count = -(-remote.size // self.chunk_size)
        job.chunks = count
        for index in range(count):
            start = index * self.chunk_size
            end = min(remote.size, start + self.chunk_size) - 1
            self.pool.submit(self._fetch_range, job, index, start, end)

    def _fetch_range(self, job: _FileJob, index: int, start: int, end: int) -> None:
        remote = job.remote

        def attempt() -> bytes:
            response = self.client.get_object(Bucket=self.location.bucket, Key=remote.key,
                                              Range=f"bytes={start}-{end}", IfMatch=remote.etag)
            body = response["Body"]
            data = body.read()
            body.close()
            if len(data) != end - start + 1:
                from botocore.exceptions import IncompleteReadError
                raise IncompleteReadError(actual_bytes=len(data), expected_bytes=end - start + 1)
            return data

        try:
            data = with_stream_retries(attempt)
        except Exception as error:
            if error_code(error) in ("PreconditionFailed", "412"):
                raise RejectedError(f"{self.where(remote)}: object changed while downloading") from None
            raise translate(error, self.where(remote)) from None
        os.pwrite(job.fd, data, start)
        self.progress.add(len(data))
        if job.feeder.put(index, data) == job.chunks:
            self._finish(job)

    def _finish(self, job: _FileJob) -> None:
        job.close()
        job.digests.finish()
        checks = verify_file(job.remote, job.digests, self.where(job.remote))
        with self.results_lock:
            self.results[job.remote.relative] = (job.digests, checks)


def verify_file(remote: _Remote, digests: StreamDigests, where: str) -> list[str]:
    """Compare what streamed in with the manifest and S3's stored checksum; RejectedError on mismatch."""
    checks: list[str] = []
    if digests.size != remote.size:
        raise RejectedError(f"{where}: received {digests.size} bytes, expected {remote.size}")
    if remote.expected is not None:
        if digests.sha256_hex != remote.expected.sha256:
            raise RejectedError(f"{where}: SHA-256 {digests.sha256_hex} does not match the manifest "
                                f"({remote.expected.sha256}); the object was changed or corrupted")
        checks.append("manifest")
    stored_is_composite = remote.stored_sha256 and _etag_parts(remote.etag) is not None
    if remote.stored_sha256 and not (stored_is_composite and digests.composite_b64 is None):
        stored, _ = split_stored_checksum(remote.stored_sha256)
        if stored not in {digests.sha256_b64, digests.composite_b64}:
            raise RejectedError(f"{where}: content does not match the SHA-256 checksum S3 stored for it; "
                                "the object was changed or corrupted")
        checks.append("s3-sha256")
    elif remote.stored_crc32:
        if digests.crc32_b64 != remote.stored_crc32:
            raise RejectedError(f"{where}: content does not match the CRC32 checksum S3 stored for it")
        checks.append("s3-crc32")
    if not checks:
        log.warning("%s: no manifest and no stored checksum; downloaded without verification", where)
    return checks


def _etag_parts(etag: str) -> int | None:
    """A multipart object's ETag ends in -N (the number of parts)."""
    _, sep, tail = etag.strip('"').rpartition("-")
    return int(tail) if sep and tail.isdigit() else None


def _move_into_place(staging: Path, dest: Path, relatives: list[str]) -> None:
    for relative in relatives:
        target = dest / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_dir():
            raise UsageError(f"{target}: a folder is in the way of a downloaded file")
        os.replace(staging / relative, target)
