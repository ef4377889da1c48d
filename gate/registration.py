"""Registering model versions: from a run, a logged model (MLflow 3) or a local folder."""

from __future__ import annotations

from pathlib import Path

from gate.errors import UsageError
from gate.mlmodel import read_mlmodel
from gate.registry import ModelVersionInfo, Registry
from gate.uris import LocalFolder, LoggedModel, RunArtifact, parse_model_uri, require_model_name

EXPERIMENT = "model-gate-registrations"


def register_source(registry: Registry, name: str, source: str, timeout_s: float, poll_s: float) -> ModelVersionInfo:
    """Create `name` if it does not exist, register a version from `source`, wait until READY."""
    require_model_name(name, "--name")
    ref = parse_model_uri(source)
    if isinstance(ref, LocalFolder):
        return register_folder(registry, name, ref.path, timeout_s, poll_s)
    # Check the source first: a bad source must leave no registered model and no version behind.
    if isinstance(ref, RunArtifact):
        registry.require_run_artifacts(ref.run_id, ref.path)
        registry.ensure_registered_model(name)
        info = registry.create_version(name, f"runs:/{ref.run_id}/{ref.path}", ref.run_id, None)
    elif isinstance(ref, LoggedModel):
        logged = registry.logged_model(ref)
        registry.ensure_registered_model(name)
        info = registry.create_version(name, logged.artifact_location, logged.source_run_id, ref.model_id)
    else:
        raise UsageError(f"--source {source!r}: register from runs:/RUN_ID/PATH, models:/m-<id> or a local folder")
    return registry.wait_ready(info, timeout_s, poll_s)


def register_folder(registry: Registry, name: str, folder: Path, timeout_s: float, poll_s: float) -> ModelVersionInfo:
    """Upload a local model folder as a run's artifacts, then register that run artifact."""
    require_model_name(name, "--name")
    folder = folder.expanduser().resolve()
    if not folder.is_dir():
        raise UsageError(f"--source {folder}: not a folder")
    _, problem = read_mlmodel(folder)
    if problem is not None:
        raise UsageError(f"--source {folder}: {problem}")
    registry.ensure_registered_model(name)
    run_id = registry.log_folder(EXPERIMENT, folder, artifact_path="model", run_name=f"register {name}")
    info = registry.create_version(name, f"runs:/{run_id}/model", run_id, None)
    return registry.wait_ready(info, timeout_s, poll_s)
