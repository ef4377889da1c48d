"""`model-gate upload`, `download` and `presign`: the S3 layout s3://BUCKET/PREFIX/NAME/VERSION/.

Thin click wrappers over gate.storage; boto3 is imported only when a command runs.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

MiB = 2**20

endpoint_option = click.option(
    "--endpoint-url", default=None, metavar="URL",
    help="S3-compatible endpoint, http(s)://host[:port] (default: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, "
         "MLFLOW_S3_ENDPOINT_URL, then AWS).")
workers_option = click.option("--workers", default=8, show_default=True, type=click.IntRange(1, 64),
                              help="Parallel transfers.")
progress_option = click.option(
    "--progress", "progress_mode", type=click.Choice(["auto", "bar", "lines", "off"]), default="auto",
    show_default=True, help="auto: a bar on a terminal, a line every few seconds otherwise (CI logs).")


@click.command()
@click.argument("local_dir", type=click.Path(path_type=Path))
@click.option("--name", required=True, help="Model name (one path segment).")
@click.option("--version", "version", required=True, help="Model version (one path segment).")
@click.option("--bucket", required=True, envvar="MODEL_GATE_BUCKET", help="Bucket [env MODEL_GATE_BUCKET].")
@click.option("--prefix", default="models", show_default=True, help="Folder above NAME/VERSION.")
@click.option("--force", is_flag=True, help="Replace an existing (or interrupted) version.")
@click.option("--part-size-mib", default=8, show_default=True, type=click.IntRange(5, 5120),
              help="Multipart part size for large files.")
@endpoint_option
@workers_option
@progress_option
def upload(local_dir: Path, name: str, version: str, bucket: str, prefix: str, force: bool, part_size_mib: int,
           endpoint_url: str | None, workers: int, progress_mode: str) -> None:
    """Upload LOCAL_DIR (subfolders kept) as an immutable model version; prints its s3:// URI."""
    from gate.storage.upload import upload_model

    result = upload_model(local_dir, bucket=bucket, name=name, version=version, prefix=prefix,
                          endpoint_url=endpoint_url, force=force, workers=workers,
                          part_size=part_size_mib * MiB, multipart_threshold=2 * part_size_mib * MiB,
                          progress_mode=progress_mode)
    click.echo(f"uploaded {len(result.manifest.files)} files, {result.total_size} bytes in "
               f"{result.seconds:.1f}s", err=True)
    click.echo(result.location.uri.rstrip("/"))


@click.command()
@click.argument("uri")
@click.argument("dest", type=click.Path(path_type=Path))
@click.option("--allow-missing-manifest", is_flag=True,
              help="Accept a version without a manifest (verified against S3 checksums only).")
@click.option("--force", is_flag=True, help="Write into a non-empty DEST, replacing files of the same name.")
@click.option("--digests", "digests_file", type=click.Path(path_type=Path), default=None,
              help="Also write the SHA-256 of every file (computed while downloading) as JSON here.")
@endpoint_option
@workers_option
@progress_option
def download(uri: str, dest: Path, allow_missing_manifest: bool, force: bool, digests_file: Path | None,
             endpoint_url: str | None, workers: int, progress_mode: str) -> None:
    """Download s3://BUCKET/PREFIX/NAME/VERSION into DEST, verifying every file."""
    import json

    from gate.storage.fetch import download_model

    result = download_model(uri, dest, endpoint_url=endpoint_url, require_manifest=not allow_missing_manifest,
                            overwrite=force, workers=workers, progress_mode=progress_mode)
    if digests_file is not None:
        digests_file.write_text(json.dumps(result.digests, indent=2, sort_keys=True) + "\n")
    click.echo(f"downloaded and verified {len(result.digests)} files, {result.total_size} bytes in "
               f"{result.seconds:.1f}s", err=True)
    click.echo(str(result.path))


@click.command()
@click.option("--name", required=True, help="Model name.")
@click.option("--version", "version", required=True, help="Model version.")
@click.option("--file", "file", default=None, help="File inside the version (default: the only file).")
@click.option("--expires", default=3600, show_default=True, type=int,
              help="Seconds the URL stays valid, at most 604800 (7 days).")
@click.option("--bucket", required=True, envvar="MODEL_GATE_BUCKET", help="Bucket [env MODEL_GATE_BUCKET].")
@click.option("--prefix", default="models", show_default=True, help="Folder above NAME/VERSION.")
@endpoint_option
def presign(name: str, version: str, file: str | None, expires: int, bucket: str, prefix: str,
            endpoint_url: str | None) -> None:
    """Print a presigned GET URL (and nothing else) for one file of a model version."""
    from gate.storage.presign import check_expires, emit_masks, presign_model_file

    check_expires(expires)
    url = presign_model_file(bucket=bucket, name=name, version=version, file=file, prefix=prefix,
                             expires=expires, endpoint_url=endpoint_url)
    # In GitHub Actions the runner must learn the mask before the URL reaches any log.
    emit_masks(url, dict(os.environ), sys.stderr)
    click.echo(url)
