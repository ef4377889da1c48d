"""S3 transfer benchmark: model-gate vs plain boto3, and download + signature check in one pass vs two.

Starts moto's S3 server on a loopback port, writes a multi-file model of --size-mib (default 1024),
signs it (OpenSSF Model Signing, EC key), then measures in one run:
  upload:   model-gate upload_model  vs  boto3 upload_file per file (default settings)
  download: model-gate download_model (verified)  vs  boto3 download_file per file (default settings)
  verify:   download_model + verify_oms reusing the streamed digests (one pass)
            vs  download_model + verify_oms hashing the files again (two passes)
It prints times and throughput; it asserts nothing. Run: python benchmarks/storage.py [--size-mib N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
MiB = 2**20


def write_model(root: Path, total_mib: int) -> None:
    """A sentence-transformers-like tree: a few large shards, small configs, a 1_Pooling/ subfolder."""
    shards = 4
    shard_size = (total_mib * MiB) // shards
    block = os.urandom(MiB)
    for i in range(shards):
        path = root / f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            for n in range(shard_size // MiB):
                handle.write(bytes([n & 0xFF, i]) + block[2:])  # distinct blocks, cheap to generate
    for relative in ("config.json", "tokenizer.json", "1_Pooling/config.json", "modules.json"):
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(os.urandom(4096))


def timed(label: str, fn, size: int, results: dict) -> object:
    start = time.perf_counter()
    value = fn()
    seconds = time.perf_counter() - start
    results[label] = seconds
    print(f"  {label:<58} {seconds:7.2f} s  {size / MiB / seconds:8.1f} MiB/s", flush=True)
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()

    import boto3
    from cryptography.hazmat.primitives.asymmetric import ec

    from gate.signing.signer import sign_oms
    from gate.signing.verifier import Trust, verify_oms
    from gate.storage.fetch import download_model
    from gate.storage.upload import upload_model
    from servers import start_moto

    work = Path(tempfile.mkdtemp(prefix="model-gate-bench-"))
    server = start_moto(work / "moto")
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1",
                      AWS_ENDPOINT_URL=server.url)
    try:
        model = work / "model"
        write_model(model, args.size_mib)
        key = ec.generate_private_key(ec.SECP256R1())
        sign_oms(model, key, model / "model.sig")
        files = sorted(p for p in model.rglob("*") if p.is_file())
        size = sum(p.stat().st_size for p in files)
        print(f"model: {len(files)} files, {size / MiB:.0f} MiB; S3: moto at {server.url}; "
              f"{os.cpu_count()} CPUs; workers={args.workers}")
        plain = boto3.client("s3", endpoint_url=server.url)
        results: dict[str, float] = {}

        print("upload")
        bucket = f"bench-{uuid.uuid4().hex[:12]}"
        plain.create_bucket(Bucket=bucket)
        timed("boto3 upload_file per file (defaults)", lambda: [
            plain.upload_file(str(p), bucket, f"plain/{p.relative_to(model).as_posix()}") for p in files],
            size, results)
        timed("model-gate upload (SHA-256 per object, manifest)", lambda: upload_model(
            model, bucket=bucket, name="bench", version="1", workers=args.workers, progress_mode="off"),
            size, results)

        print("download")
        plain_dest = work / "plain"

        def plain_download() -> None:
            for p in files:
                target = plain_dest / p.relative_to(model)
                target.parent.mkdir(parents=True, exist_ok=True)
                plain.download_file(bucket, f"plain/{p.relative_to(model).as_posix()}", str(target))

        timed("boto3 download_file per file (defaults, unverified)", plain_download, size, results)
        shutil.rmtree(plain_dest)
        uri = f"s3://{bucket}/models/bench/1"
        timed("model-gate download (verified, digests streamed)", lambda: download_model(
            uri, work / "d0", workers=args.workers), size, results)
        shutil.rmtree(work / "d0")

        print("download + signature verification")
        trust = Trust(public_keys=[key.public_key()])

        def one_pass() -> None:
            result = download_model(uri, work / "d1", workers=args.workers)
            check = verify_oms(work / "d1", work / "d1" / "model.sig", trust, precomputed=result.digests)
            assert check.ok and check.bytes_hashed == 0, check.problems

        def two_passes() -> None:
            download_model(uri, work / "d2", workers=args.workers)
            check = verify_oms(work / "d2", work / "d2" / "model.sig", trust)
            assert check.ok, check.problems

        timed("one pass: download + verify with streamed digests", one_pass, size, results)
        shutil.rmtree(work / "d1")
        timed("two passes: download, then verify hashing every file", two_passes, size, results)
        start = time.perf_counter()
        verify_oms(work / "d2", work / "d2" / "model.sig", trust)
        results["verify alone (hash pass, warm page cache)"] = time.perf_counter() - start
        print(f"  {'verify alone (hash pass, warm page cache)':<58} "
              f"{results['verify alone (hash pass, warm page cache)']:7.2f} s")

        print("summary")
        up = results["boto3 upload_file per file (defaults)"] / results[
            "model-gate upload (SHA-256 per object, manifest)"]
        down = results["boto3 download_file per file (defaults, unverified)"] / results[
            "model-gate download (verified, digests streamed)"]
        saved = results["two passes: download, then verify hashing every file"] - results[
            "one pass: download + verify with streamed digests"]
        print(f"  upload speed-up vs boto3 loop:   {up:.2f}x")
        print(f"  download speed-up vs boto3 loop: {down:.2f}x")
        print(f"  one pass saves {saved:.2f} s on {size / MiB:.0f} MiB "
              f"({100 * saved / results['two passes: download, then verify hashing every file']:.0f}% "
              "of download + verify)")
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
