"""`model-gate digest`: is this folder exactly what the gate checked?"""

from __future__ import annotations

import json
from pathlib import Path

import click

# MLflow's `models:/` download writes this file beside the artifacts; the gate downloads the
# version's own artifact location, so the recorded digest never covers it.
MLFLOW_META_FILE = "registered_model_meta"
CONTENT_TAG = "model_gate.content_sha256"


@click.command("digest")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--expect", "expect_uri", metavar="URI",
              help="A registry version (models:/NAME/N, models:/NAME@ALIAS): exit 1 unless FOLDER holds "
                   "exactly the files the gate promoted as that version.")
@click.option("--tracking-uri", envvar="MLFLOW_TRACKING_URI", show_envvar=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def digest(folder: Path, expect_uri: str | None, tracking_uri: str | None, as_json: bool) -> int:
    """Print the content digest of FOLDER (what `model_gate.content_sha256` records), and
    with --expect compare it with the digest the gate recorded on a registry version."""
    from gate.content import content_digest
    from gate.errors import ExitCode, UsageError

    if not folder.is_dir():
        raise UsageError(f"{folder} is not a folder" if folder.exists() else f"folder {folder} does not exist")
    computed = content_digest(folder)
    if computed.problem:
        raise UsageError(f"cannot digest {folder}: {computed.problem}")
    result = {"folder": str(folder), "content_sha256": computed.digest, "files": computed.files}
    if expect_uri is None:
        _print(result, as_json, f"{computed.digest}  {computed.files} files  {folder}")
        return int(ExitCode.PASSED)
    result.update(_compare(folder, computed.digest, expect_uri, tracking_uri))
    _print(result, as_json, result["message"])
    return int(ExitCode.PASSED if result["verified"] else ExitCode.REJECTED)


def _compare(folder: Path, computed: str, uri: str, tracking_uri: str | None) -> dict:
    from gate.content import content_digest
    from gate.errors import UsageError
    from gate.registry import Registry
    from gate.uris import is_registry_ref, parse_model_uri

    ref = parse_model_uri(uri)
    if not is_registry_ref(ref):
        raise UsageError(f"--expect {uri!r} is not a registry URI (models:/NAME/VERSION or models:/NAME@ALIAS)")
    registry = Registry(tracking_uri)
    click.echo(f"model-gate: tracking URI: {registry.display_uri}", err=True)
    info = registry.resolve(ref)
    recorded = info.tags.get(CONTENT_TAG)
    status = info.tags.get("model_gate.status", "none")
    found = {"expected": info.uri, "recorded_sha256": recorded, "gate_status": status}
    if not recorded:
        return {**found, "content_matches": False, "verified": False,
                "message": f"{info.uri} has no {CONTENT_TAG} tag: it was not gated, or by a model-gate "
                           "that did not record content digests"}
    matches, note = computed == recorded, ""
    if not matches and (folder / MLFLOW_META_FILE).is_file():
        # A `models:/` download adds MLflow's metadata file; the gated files are everything else.
        matches = content_digest(folder, exclude=(MLFLOW_META_FILE,)).digest == recorded
        note = f" (not counting {MLFLOW_META_FILE}, which MLflow's download adds)"
    if not matches:
        message = f"{folder} does not hold the files gated as {info.uri}: {computed} != recorded {recorded}"
    elif status != "promoted":
        # The right files, but the gate did not let them through.
        message = (f"{folder} holds the files gated as {info.uri}{note}, but the gate's decision on it "
                   f"was {status!r}, not 'promoted'")
    else:
        message = f"{folder} holds exactly the files gated and promoted as {info.uri}{note}"
    return {**found, "content_matches": matches, "verified": matches and status == "promoted", "message": message}


def _print(result: dict, as_json: bool, text: str) -> None:
    click.echo(json.dumps(result, indent=2) if as_json else text)
