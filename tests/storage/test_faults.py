"""Throttling, access denied and network cuts, injected by a real loopback proxy in front of moto."""

from __future__ import annotations

import hashlib

from s3testing import MiB
from faultproxy import Fault
from gate.cli import main
from gate.storage.fetch import download_model


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def upload(capsys, root, bucket, version="1", *extra):
    return run(capsys, "upload", str(root), "--name", "encoder", "--version", version, "--bucket", bucket,
               "--part-size-mib", "5", "--progress", "off", *extra)


def is_range_get(key_part: str):
    return lambda method, path: method == "GET" and key_part in path and "list-type" not in path


def test_throttling_is_retried_with_backoff(bucket, model_dir, proxy, tmp_path, capsys):
    root, expected = model_dir
    slow = proxy.add(Fault(match=lambda m, p: m in ("PUT", "POST"), action="slowdown", times=3))
    code, _, err = upload(capsys, root, bucket)
    assert code == 0, err
    assert slow.hits == 3
    slow_get = proxy.add(Fault(match=is_range_get("model.safetensors"), action="slowdown", times=2))
    result = download_model(f"s3://{bucket}/models/encoder/1", tmp_path / "d")
    assert slow_get.hits == 2 and result.digests == expected


def test_throttling_that_never_ends_is_an_infrastructure_error(bucket, model_dir, proxy, monkeypatch, tmp_path, capsys):
    root, _ = model_dir
    assert upload(capsys, root, bucket)[0] == 0
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    proxy.add(Fault(match=is_range_get("config.json"), action="slowdown"))
    dest = tmp_path / "d"
    code, _, err = run(capsys, "download", f"s3://{bucket}/models/encoder/1", str(dest), "--progress", "off")
    assert code == 3
    assert "kept throttling (SlowDown)" in err and "config.json" in err
    assert not dest.exists() or [p for p in dest.rglob("*") if p.is_file()] == []


def test_access_denied_is_exit_3_with_a_hint(bucket, model_dir, proxy, tmp_path, capsys):
    root, _ = model_dir
    proxy.add(Fault(match=lambda m, p: True, action="denied"))
    code, _, err = upload(capsys, root, bucket)
    assert code == 3 and "access denied (403)" in err and "IAM policy" in err  # HEAD: no error body
    code, _, err = run(capsys, "download", f"s3://{bucket}/models/encoder/1", str(tmp_path / "d"))
    assert code == 3 and "access denied (AccessDenied)" in err


def test_a_range_cut_mid_body_is_fetched_again(bucket, model_dir, proxy, tmp_path, capsys):
    root, expected = model_dir
    assert upload(capsys, root, bucket)[0] == 0
    cut = proxy.add(Fault(match=is_range_get("model.safetensors"), action="cut_response", times=2,
                          after_bytes=100_000))
    result = download_model(f"s3://{bucket}/models/encoder/1", tmp_path / "d", chunk_size=2 * MiB)
    assert cut.hits == 2
    assert result.digests == expected
    assert hashlib.sha256((tmp_path / "d" / "model.safetensors").read_bytes()).hexdigest() == expected[
        "model.safetensors"]


def test_a_connection_that_keeps_dropping_leaves_no_file_under_its_final_name(bucket, model_dir, proxy, tmp_path,
                                                                              capsys):
    root, _ = model_dir
    assert upload(capsys, root, bucket)[0] == 0
    proxy.add(Fault(match=is_range_get("model.safetensors"), action="cut_response", after_bytes=4096))
    dest = tmp_path / "d"
    code, _, err = run(capsys, "download", f"s3://{bucket}/models/encoder/1", str(dest), "--progress", "off")
    assert code == 3 and "model.safetensors: transfer failed" in err
    assert list(dest.iterdir()) == []  # neither final files nor the staging folder remain


def test_an_upload_part_cut_mid_request_is_sent_again(s3, bucket, model_dir, proxy, tmp_path, capsys):
    root, expected = model_dir
    cut = proxy.add(Fault(match=lambda m, p: m == "PUT" and "partNumber=2" in p, action="cut_request", times=1,
                          after_bytes=64 * 1024))
    code, _, err = upload(capsys, root, bucket)
    assert code == 0, err
    assert cut.hits == 1
    assert download_model(f"s3://{bucket}/models/encoder/1", tmp_path / "d").digests == expected


def test_interrupted_upload_is_recognisable_and_recoverable(s3, bucket, model_dir, proxy, tmp_path, monkeypatch,
                                                            capsys):
    root, expected = model_dir
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    # The network goes away for good when the big file's parts start.
    proxy.add(Fault(match=lambda m, p: m == "PUT" and "partNumber=" in p, action="cut_request", after_bytes=0))
    code, _, err = upload(capsys, root, bucket, "1", "--workers", "1")
    assert code == 3 and "model.safetensors" in err
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="models/encoder/1/").get("Contents", [])]
    assert keys and not any(k.endswith(".model-gate-manifest.json") for k in keys)
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []  # aborted, no orphan parts
    proxy.clear()
    code, _, err = run(capsys, "download", f"s3://{bucket}/models/encoder/1", str(tmp_path / "d"), "--progress", "off")
    assert code == 1 and "has no manifest: the upload was interrupted" in err
    code, _, err = upload(capsys, root, bucket)
    assert code == 2 and "an earlier upload was interrupted" in err and "--force" in err
    code, _, err = upload(capsys, root, bucket, "1", "--force")
    assert code == 0, err
    assert download_model(f"s3://{bucket}/models/encoder/1", tmp_path / "e").digests == expected
