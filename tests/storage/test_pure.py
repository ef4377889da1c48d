"""Pure parts of the storage package: layout, endpoints, manifest, digests, progress, masks."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import random
import threading
import zlib

import pytest

from gate.errors import RejectedError, UsageError
from gate.storage.checksums import OrderedFeeder, StreamDigests, split_stored_checksum
from gate.storage.endpoint import resolve_endpoint
from gate.storage.layout import UnsafeKey, parse_s3_uri, safe_relative_path, version_location
from gate.storage.manifest import ManifestFile, build_manifest, parse_manifest
from gate.storage.presign import check_expires, github_mask_commands
from gate.storage.progress import Progress
from gate.storage.upload import choose_part_size

MiB = 2**20


def test_uri_prefix_always_ends_with_slash_so_version_1_never_matches_10():
    location = parse_s3_uri("s3://my-bucket/models/m/1")
    assert (location.bucket, location.prefix) == ("my-bucket", "models/m/1/")
    assert parse_s3_uri("s3://my-bucket/models/m/1/").prefix == "models/m/1/"
    assert location.manifest_key == "models/m/1/.model-gate-manifest.json"


@pytest.mark.parametrize("uri, fragment", [
    ("http://bucket/x", "not an s3:// URI"),
    ("s3:///models/m/1", "has no bucket"),
    ("s3://Bad_Bucket/models", "not a valid S3 bucket name"),
    ("s3://my-bucket", "names a whole bucket"),
    ("s3://my-bucket/a?versionId=1", "must not contain"),
])
def test_bad_uris_are_usage_errors_that_say_what_is_wrong(uri, fragment):
    with pytest.raises(UsageError, match=fragment):
        parse_s3_uri(uri)


def test_version_location_validates_each_segment():
    assert version_location("my-bucket", "iris", "3").prefix == "models/iris/3/"
    assert version_location("my-bucket", "iris", "3", prefix="").prefix == "iris/3/"
    assert version_location("my-bucket", "iris", "3", prefix="/teams/ml/").prefix == "teams/ml/iris/3/"
    for name in ("..", "a/b", "", ".hidden"):
        with pytest.raises(UsageError, match="model name"):
            version_location("my-bucket", name, "1")


@pytest.mark.parametrize("key, reason", [
    ("../evil", "'..'"), ("a/../../evil", "'..'"), ("/etc/passwd", "absolute"), ("a\\..\\evil", "backslash"),
    ("a//b", "empty"), ("./a", "'.'"), ("C:/windows", "drive letter"), ("", "empty"), ("a\x00b", "NUL"),
])
def test_unsafe_keys_are_refused(key, reason):
    with pytest.raises(UnsafeKey) as info:
        safe_relative_path(key)
    assert reason in str(info.value)


def test_safe_keys_map_to_relative_paths():
    assert str(safe_relative_path("1_Pooling/config.json")) == "1_Pooling/config.json"
    assert str(safe_relative_path("weights..v2.bin")) == "weights..v2.bin"


@pytest.mark.parametrize("url, expected", [
    ("http://127.0.0.1:9000", "http://127.0.0.1:9000"),
    ("https://minio.example.com/", "https://minio.example.com"),
    ("http://[::1]:9000", "http://[::1]:9000"),
])
def test_good_endpoints_are_normalised(url, expected):
    assert resolve_endpoint(url, {}) == expected


@pytest.mark.parametrize("url, fragment", [
    ("127.0.0.1:9000", "must start with http"),
    ("ftp://host", "must start with http"),
    ("http://host:9000/my-bucket", "has a path '/my-bucket'"),
    ("http://user:pw@host", "must not contain credentials"),
    ("http://host:notaport", "not a valid URL"),
    ("http://host?x=1", "query"),
])
def test_bad_endpoints_say_how_to_fix_them(url, fragment):
    with pytest.raises(UsageError) as info:
        resolve_endpoint(url, {})
    assert fragment in str(info.value)
    assert "http(s)://host[:port]" in str(info.value)


def test_endpoint_env_order_and_source_named_in_errors():
    env = {"AWS_ENDPOINT_URL": "http://a:1", "MLFLOW_S3_ENDPOINT_URL": "http://b:2"}
    assert resolve_endpoint(None, env) == "http://a:1"
    assert resolve_endpoint(None, {"MLFLOW_S3_ENDPOINT_URL": "http://b:2"}) == "http://b:2"
    assert resolve_endpoint("http://c:3", env) == "http://c:3"
    assert resolve_endpoint(None, {}) is None
    with pytest.raises(UsageError, match="MLFLOW_S3_ENDPOINT_URL"):
        resolve_endpoint(None, {"MLFLOW_S3_ENDPOINT_URL": "http://b:2/bucket"})
    with pytest.raises(UsageError, match="virtual-host"):
        resolve_endpoint("https://my-bucket.s3.amazonaws.com", {}, bucket="my-bucket")


def test_manifest_round_trip_and_rejections():
    entry = ManifestFile(path="1_Pooling/config.json", size=3, sha256="a" * 64)
    manifest = build_manifest("m", "1", [entry, ManifestFile(path="b.bin", size=1, sha256="b" * 64, part_size=MiB)])
    parsed = parse_manifest(manifest.to_bytes(), "s3://x/m")
    assert [f.path for f in parsed.files] == ["1_Pooling/config.json", "b.bin"]
    assert parsed.total_size == 4
    with pytest.raises(RejectedError, match="unsafe path"):
        parse_manifest(manifest.to_bytes().replace(b"b.bin", b"../x"), "s3://x/m")
    with pytest.raises(RejectedError, match="files"):
        parse_manifest(b'{"format": "model-gate.manifest/v1", "name": "m", "version": "1", "created": "x"}', "s3://x/m")
    with pytest.raises(RejectedError, match="invalid manifest"):
        parse_manifest(b"not json", "s3://x/m")


def test_stream_digests_match_hashlib_and_the_s3_composite_rule():
    data = os.urandom(5 * MiB + 12345)
    digests = StreamDigests(part_size=2 * MiB, crc32=True)
    for start in range(0, len(data), 777_777):  # chunks that do not line up with parts
        digests.update(data[start:start + 777_777])
    digests.finish()
    parts = [data[i:i + 2 * MiB] for i in range(0, len(data), 2 * MiB)]
    composite = hashlib.sha256(b"".join(hashlib.sha256(p).digest() for p in parts)).digest()
    assert digests.sha256_hex == hashlib.sha256(data).hexdigest()
    assert digests.composite_b64 == base64.b64encode(composite).decode()
    assert digests.crc32_b64 == base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    assert len(digests.part_digests) == 3
    assert split_stored_checksum("abc=-3") == ("abc=", 3)
    assert split_stored_checksum("abc=") == ("abc=", None)


def test_ordered_feeder_feeds_in_order_from_many_threads_and_releases_each_chunk():
    chunks = [os.urandom(random.randint(1, 5000)) for _ in range(200)]
    order = list(range(200))
    random.shuffle(order)
    fed: list[bytes] = []
    released = []
    feeder = OrderedFeeder(fed.append, on_flushed=lambda: released.append(1))
    finals = []

    def put(indexes):
        for i in indexes:
            if feeder.put(i, chunks[i]) == 200:
                finals.append(i)

    threads = [threading.Thread(target=put, args=(order[k::4],)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert b"".join(fed) == b"".join(chunks)
    assert len(released) == 200
    assert len(finals) == 1  # exactly one caller sees the last chunk land


def test_part_size_grows_only_past_ten_thousand_parts():
    assert choose_part_size(100 * MiB, 8 * MiB) == 8 * MiB
    big = 200 * 1024 * MiB  # 200 GiB
    size = choose_part_size(big, 8 * MiB)
    assert size % MiB == 0 and -(-big // size) <= 10_000 and size > 8 * MiB


def test_expiry_is_bounded_by_the_sigv4_limit():
    assert check_expires(604800) == 604800
    for bad in (0, -5, 604801):
        with pytest.raises(UsageError, match="7 days"):
            check_expires(bad)


def test_mask_commands_cover_url_and_signature():
    url = "https://h/b/k?X-Amz-Signature=abc123&X-Amz-Security-Token=tok%2Fen"
    assert github_mask_commands(url) == [f"::add-mask::{url}", "::add-mask::abc123", "::add-mask::tok/en"]


def test_progress_lines_for_ci_logs():
    stream = io.StringIO()
    progress = Progress("upload s3://b/m/1/", 4 * MiB, mode="auto", stream=stream, interval_s=0)
    assert progress.mode == "lines"  # StringIO is not a terminal
    progress.add(MiB)
    progress.add(3 * MiB)
    progress.close()
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("upload s3://b/m/1/: 1.0 MiB / 4.0 MiB (25%)")
    assert "4.0 MiB / 4.0 MiB (100%)" in lines[-1] and " in " in lines[-1]
    assert "\r" not in stream.getvalue()
