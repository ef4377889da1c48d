"""Upload and download against moto's real S3 HTTP server, driven by real boto3."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tracemalloc
from pathlib import Path

import pytest

from s3testing import MiB, write_model
from gate.cli import main
from gate.storage.fetch import STAGING_PREFIX, download_model
from gate.storage.upload import upload_model


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def upload_cli(capsys, model: Path, bucket: str, version: str = "1", *extra: str) -> tuple[int, str, str]:
    return run(capsys, "upload", str(model), "--name", "encoder", "--version", version, "--bucket", bucket,
               "--part-size-mib", "5", "--progress", "off", *extra)


def local_digests(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_round_trip_keeps_subfolders_checksums_and_writes_manifest_last(s3, bucket, model_dir, tmp_path, capsys):
    root, expected = model_dir
    code, out, err = upload_cli(capsys, root, bucket)
    assert code == 0, err
    assert out.strip() == f"s3://{bucket}/models/encoder/1"
    listing = s3.list_objects_v2(Bucket=bucket, Prefix="models/encoder/1/")["Contents"]
    keys = sorted(o["Key"][len("models/encoder/1/"):] for o in listing)
    assert keys == sorted([*expected, ".model-gate-manifest.json"])
    # The manifest is the newest object: written after every file.
    newest = max(listing, key=lambda o: o["LastModified"])
    assert newest["LastModified"] == next(o for o in listing if o["Key"].endswith("manifest.json"))["LastModified"]
    manifest = json.loads(s3.get_object(Bucket=bucket, Key="models/encoder/1/.model-gate-manifest.json")["Body"].read())
    assert {f["path"]: f["sha256"] for f in manifest["files"]} == expected
    # Every object carries the SHA-256 S3 stores; the big one went in 3 parts of 5 MiB.
    big = s3.head_object(Bucket=bucket, Key="models/encoder/1/model.safetensors", ChecksumMode="ENABLED")
    assert big["ETag"].strip('"').endswith("-3")
    data = (root / "model.safetensors").read_bytes()
    parts = [data[i:i + 5 * MiB] for i in range(0, len(data), 5 * MiB)]
    composite = base64.b64encode(hashlib.sha256(b"".join(hashlib.sha256(p).digest() for p in parts)).digest())
    assert big["ChecksumSHA256"].split("-")[0] == composite.decode()
    small = s3.head_object(Bucket=bucket, Key="models/encoder/1/1_Pooling/config.json", ChecksumMode="ENABLED")
    assert small["ChecksumSHA256"] == base64.b64encode(
        hashlib.sha256((root / "1_Pooling/config.json").read_bytes()).digest()).decode()

    dest = tmp_path / "out"
    code, out, err = run(capsys, "download", f"s3://{bucket}/models/encoder/1", str(dest), "--progress", "off",
                         "--digests", str(tmp_path / "digests.json"))
    assert code == 0, err
    assert local_digests(dest) == expected
    assert json.loads((tmp_path / "digests.json").read_text()) == expected
    assert not any(p.name.startswith(STAGING_PREFIX) for p in dest.iterdir())


def test_library_download_returns_streamed_digests_and_what_each_file_was_checked_against(s3, bucket, model_dir,
                                                                                       tmp_path):
    root, expected = model_dir
    upload_model(root, bucket=bucket, name="encoder", version="7", part_size=5 * MiB,
                 multipart_threshold=5 * MiB, progress_mode="off")
    result = download_model(f"s3://{bucket}/models/encoder/7", tmp_path / "d", chunk_size=3 * MiB, workers=3)
    assert result.digests == expected
    # Multipart with a manifest: the whole-file SHA-256 pins it (no second, per-part hash pass);
    # single-part objects are also compared with the SHA-256 S3 stored.
    assert result.verified["model.safetensors"] == ["manifest"]
    assert result.verified["config.json"] == ["manifest", "s3-sha256"]
    assert result.total_size == sum((root / p).stat().st_size for p in expected)


def test_version_1_does_not_pick_up_version_10(s3, bucket, model_dir, tmp_path, capsys):
    root, expected = model_dir
    assert upload_cli(capsys, root, bucket, "1")[0] == 0
    other = tmp_path / "other"
    write_model(other, big_size=1000)
    (other / "extra.bin").write_bytes(b"only in 10")
    assert upload_cli(capsys, other, bucket, "10")[0] == 0
    result = download_model(f"s3://{bucket}/models/encoder/1", tmp_path / "d")
    assert result.digests == expected


def test_versions_are_immutable_unless_forced(s3, bucket, model_dir, tmp_path, capsys):
    root, expected = model_dir
    assert upload_cli(capsys, root, bucket)[0] == 0
    before = s3.get_object(Bucket=bucket, Key="models/encoder/1/config.json")["ETag"]
    (root / "config.json").write_bytes(b'{"hidden_size": 16}\n')
    code, out, err = upload_cli(capsys, root, bucket)
    assert code == 2
    assert "already exists: model versions are immutable" in err and "--force" in err
    assert s3.get_object(Bucket=bucket, Key="models/encoder/1/config.json")["ETag"] == before
    # --force replaces the version and drops files that are no longer there.
    (root / "tokenizer" / "vocab.txt").unlink()
    code, _, err = upload_cli(capsys, root, bucket, "1", "--force")
    assert code == 0, err
    result = download_model(f"s3://{bucket}/models/encoder/1", tmp_path / "d")
    assert result.digests == local_digests(root)
    assert "tokenizer/vocab.txt" not in result.digests


def test_conditional_write_refuses_an_object_written_by_a_racer_mid_upload(s3, bucket, model_dir, proxy, capsys):
    """The existence pre-check passes; then another writer creates a file of the same version just
    before our PUT reaches moto. moto enforces If-None-Match: *, so our write is refused (412)."""
    from faultproxy import Fault

    root, _ = model_dir
    key = "models/encoder/1/config.json"
    proxy.add(Fault(match=lambda method, path: method == "PUT" and path.startswith(f"/{bucket}/{key}"),
                    action="before", times=1,
                    callback=lambda: s3.put_object(Bucket=bucket, Key=key, Body=b"racer")))
    code, _, err = upload_cli(capsys, root, bucket, "1", "--workers", "1")
    assert code == 2 and f"s3://{bucket}/{key} already exists" in err
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"racer"
    # No manifest: readers see an incomplete version, not a mix of two uploads.
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix="models/encoder/1/.model-gate")


def test_path_traversal_keys_are_refused_and_nothing_is_written(s3, bucket, tmp_path, capsys):
    for key in ("models/evil/1/../../escape.txt", "models/evil/1/a\\..\\escape.txt", "models/evil/1//etc/x"):
        s3.put_object(Bucket=bucket, Key="models/evil/1/ok.txt", Body=b"fine")
        s3.put_object(Bucket=bucket, Key=key, Body=b"owned")
        dest = tmp_path / "dest" / "inner"
        code, _, err = run(capsys, "download", f"s3://{bucket}/models/evil/1", str(dest),
                           "--allow-missing-manifest", "--progress", "off")
        assert code == 1
        assert "would escape the destination folder" in err and key in err
        assert not (tmp_path / "dest" / "escape.txt").exists() and not (tmp_path / "escape.txt").exists()
        assert not dest.exists() or list(dest.iterdir()) == []
        s3.delete_object(Bucket=bucket, Key=key)


def test_manifest_listing_a_traversal_path_is_rejected(s3, bucket, model_dir, tmp_path, capsys):
    root, _ = model_dir
    assert upload_cli(capsys, root, bucket)[0] == 0
    key = "models/encoder/1/.model-gate-manifest.json"
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    manifest["files"][0]["path"] = "../../../tmp/owned"
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(manifest).encode())
    code, _, err = run(capsys, "download", f"s3://{bucket}/models/encoder/1", str(tmp_path / "d"), "--progress", "off")
    assert code == 1 and "unsafe path" in err


def test_object_changed_behind_the_tools_back_is_rejected_by_name(s3, bucket, model_dir, tmp_path, capsys):
    root, _ = model_dir
    assert upload_cli(capsys, root, bucket)[0] == 0
    key = "models/encoder/1/tokenizer/vocab.txt"
    original = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    s3.put_object(Bucket=bucket, Key=key, Body=original.replace(b"hello", b"HELLO"))  # same size
    dest = tmp_path / "d"
    code, _, err = run(capsys, "download", f"s3://{bucket}/models/encoder/1", str(dest), "--progress", "off")
    assert code == 1
    assert f"s3://{bucket}/{key}" in err and "does not match the manifest" in err
    # No file reaches its final name when any file fails verification.
    assert not dest.exists() or [p for p in dest.rglob("*") if p.is_file()] == []


def test_corrupted_large_object_is_caught(s3, bucket, model_dir, tmp_path, capsys):
    root, _ = model_dir
    assert upload_cli(capsys, root, bucket)[0] == 0
    key = "models/encoder/1/model.safetensors"
    data = bytearray((root / "model.safetensors").read_bytes())
    data[7 * MiB] ^= 0xFF  # one flipped bit pattern in the second part
    s3.put_object(Bucket=bucket, Key=key, Body=bytes(data))
    code, _, err = run(capsys, "download", f"s3://{bucket}/models/encoder/1", str(tmp_path / "d"), "--progress", "off")
    assert code == 1 and f"s3://{bucket}/{key}" in err


def test_without_manifest_the_stored_s3_checksum_is_checked(s3, bucket, tmp_path):
    from gate.errors import RejectedError

    good = b"weights" * 1000
    wrong = base64.b64encode(hashlib.sha256(b"something else").digest()).decode()
    s3.put_object(Bucket=bucket, Key="raw/m/a.bin", Body=good, ChecksumAlgorithm="SHA256",
                  ChecksumSHA256=base64.b64encode(hashlib.sha256(good).digest()).decode())
    result = download_model(f"s3://{bucket}/raw/m", tmp_path / "ok")
    assert result.digests == {"a.bin": hashlib.sha256(good).hexdigest()}
    assert result.verified == {"a.bin": ["s3-sha256"]}
    # moto stores a wrong client-supplied checksum without checking it (real S3 would answer BadDigest);
    # the download still catches the mismatch.
    s3.put_object(Bucket=bucket, Key="raw/m/a.bin", Body=good, ChecksumAlgorithm="SHA256", ChecksumSHA256=wrong)
    with pytest.raises(RejectedError, match=f"s3://{bucket}/raw/m/a.bin"):
        download_model(f"s3://{bucket}/raw/m", tmp_path / "bad")
    assert not (tmp_path / "bad" / "a.bin").exists()


def test_objects_added_or_removed_after_upload_are_rejected(s3, bucket, model_dir, tmp_path, capsys):
    root, _ = model_dir
    assert upload_cli(capsys, root, bucket)[0] == 0
    s3.put_object(Bucket=bucket, Key="models/encoder/1/backdoor.py", Body=b"import os")
    code, _, err = run(capsys, "download", f"s3://{bucket}/models/encoder/1", str(tmp_path / "a"), "--progress", "off")
    assert code == 1 and "backdoor.py: object is not listed in the manifest" in err
    s3.delete_object(Bucket=bucket, Key="models/encoder/1/backdoor.py")
    s3.delete_object(Bucket=bucket, Key="models/encoder/1/config.json")
    code, _, err = run(capsys, "download", f"s3://{bucket}/models/encoder/1", str(tmp_path / "b"), "--progress", "off")
    assert code == 1 and "config.json: listed in the manifest but missing" in err


def test_missing_bucket_and_missing_version_are_storage_errors(s3, bucket, model_dir, tmp_path, capsys):
    root, _ = model_dir
    code, _, err = run(capsys, "download", "s3://no-such-bucket-mg/models/encoder/1", str(tmp_path / "a"))
    assert code == 3 and "bucket no-such-bucket-mg does not exist" in err
    code, _, err = upload_cli(capsys, root, "no-such-bucket-mg")
    assert code == 3 and "bucket no-such-bucket-mg does not exist" in err
    code, _, err = run(capsys, "download", f"s3://{bucket}/models/encoder/404", str(tmp_path / "b"))
    assert code == 3 and f"no model version at s3://{bucket}/models/encoder/404/" in err


def test_bad_endpoint_is_refused_before_any_request(s3_env, monkeypatch, tmp_path, capsys):
    code, _, err = run(capsys, "download", "s3://some-bucket/models/m/1", str(tmp_path / "a"),
                       "--endpoint-url", f"{s3_env.url}/some-bucket")
    assert code == 2 and "--endpoint-url" in err and "http(s)://host[:port]" in err
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", "localhost:9000")
    code, _, err = run(capsys, "download", "s3://some-bucket/models/m/1", str(tmp_path / "b"))
    assert code == 2 and "MLFLOW_S3_ENDPOINT_URL" in err and "must start with http" in err


def test_destination_must_be_empty_unless_forced(s3, bucket, model_dir, tmp_path, capsys):
    root, expected = model_dir
    assert upload_cli(capsys, root, bucket)[0] == 0
    dest = tmp_path / "d"
    dest.mkdir()
    (dest / "config.json").write_text("old")
    code, _, err = run(capsys, "download", f"s3://{bucket}/models/encoder/1", str(dest), "--progress", "off")
    assert code == 2 and "not empty" in err and (dest / "config.json").read_text() == "old"
    code, _, err = run(capsys, "download", f"s3://{bucket}/models/encoder/1", str(dest), "--progress", "off", "--force")
    assert code == 0 and local_digests(dest) == expected


def test_secrets_never_reach_the_output(s3, bucket, model_dir, tmp_path, capsys):
    from s3testing import CREDENTIALS

    root, _ = model_dir
    code, out, err = run(capsys, "-vv", "upload", str(root), "--name", "encoder", "--version", "1",
                         "--bucket", bucket, "--progress", "lines")
    code2, out2, err2 = run(capsys, "-vv", "download", f"s3://{bucket}/models/encoder/1", str(tmp_path / "d"))
    assert (code, code2) == (0, 0)
    for text in (out, err, out2, err2):
        assert CREDENTIALS["AWS_SECRET_ACCESS_KEY"] not in text
        assert "Signature=" not in text and "Authorization" not in text


def test_download_memory_does_not_grow_with_file_size(s3, bucket, tmp_path):
    """Peak Python allocations stay near workers x chunk size, for a file 24x the chunk size."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "big.bin").write_bytes(os.urandom(24 * MiB))
    upload_model(src, bucket=bucket, name="big", version="1", progress_mode="off")
    tracemalloc.start()
    try:
        result = download_model(f"s3://{bucket}/models/big/1", tmp_path / "d", chunk_size=MiB, workers=2)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.total_size == 24 * MiB
    assert peak < 16 * MiB, f"peak {peak / MiB:.1f} MiB"


def test_without_manifest_a_multipart_object_is_checked_against_its_composite_checksum(s3, bucket, model_dir,
                                                                                        tmp_path):
    root, expected = model_dir
    upload_model(root, bucket=bucket, name="encoder", version="2", part_size=5 * MiB,
                 multipart_threshold=5 * MiB, progress_mode="off")
    s3.delete_object(Bucket=bucket, Key="models/encoder/2/.model-gate-manifest.json")
    result = download_model(f"s3://{bucket}/models/encoder/2", tmp_path / "ok", chunk_size=3 * MiB)
    assert result.digests == expected
    # The composite SHA-256 was rebuilt from per-part digests computed while streaming 3 MiB ranges
    # across 5 MiB parts, and matched what S3 stored (a wrong one raises, see verify_file).
    assert result.verified["model.safetensors"] == ["s3-sha256"]
