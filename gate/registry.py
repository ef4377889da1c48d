"""The MLflow model registry: the only module that talks to MLflow's tracking server.

Every MLflow or HTTP failure is turned into a GateError here, with the
tracking URI (credentials removed) in the message, so "model not found" and
"server down" can be told apart and diagnosed.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TypeVar

from gate.errors import RegistryError, RejectedError, UsageError
from gate.uris import (
    LOCK_SUFFIX,
    LoggedModel,
    ModelRef,
    RegistryAlias,
    RegistryLatest,
    RegistryVersion,
    RunArtifact,
    redact_uri,
    remember_secrets_of,
    scrub_secrets,
    server_uri_problem,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

READY, PENDING, FAILED = "READY", "PENDING_REGISTRATION", "FAILED_REGISTRATION"


@dataclass(frozen=True)
class ModelVersionInfo:
    """One concrete registry version, read from the version itself (never from search results)."""

    name: str
    version: str
    status: str
    source: str
    run_id: str | None
    current_stage: str | None
    aliases: tuple[str, ...]
    tags: dict[str, str] = field(default_factory=dict)
    download_uri: str | None = None

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "version": self.version, "status": self.status, "source": self.source,
            "run_id": self.run_id, "stage": self.current_stage, "aliases": list(self.aliases),
            "download_uri": redact_uri(self.download_uri), "uri": self.uri,
        }


def _configure_mlflow() -> None:
    # MLflow retries a dead server for minutes by default; a CI gate should say "down" quickly.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    # Progress bars belong on terminals; the gate prints its own one-line progress.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # Nor "View run ... at: URL" banners, whose URL is built from the tracking server's address.
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")


class Registry:
    """A thin, error-translating wrapper around MlflowClient."""

    def __init__(self, tracking_uri: str | None, registry_uri: str | None = None) -> None:
        tracking_uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
        if not tracking_uri:
            raise UsageError("no tracking URI: set registry.tracking_uri in the policy, "
                             "--tracking-uri, or MLFLOW_TRACKING_URI")
        remember_secrets_of(tracking_uri)
        _check_tracking_uri(tracking_uri)
        if registry_uri:
            remember_secrets_of(registry_uri)
            _check_tracking_uri(registry_uri, what="registry URI")
        _configure_mlflow()
        from mlflow import MlflowClient

        self.tracking_uri = tracking_uri
        self.registry_uri = registry_uri or tracking_uri
        self.display_uri = redact_uri(tracking_uri)
        try:
            self._client = MlflowClient(tracking_uri=tracking_uri, registry_uri=self.registry_uri)
        except ModuleNotFoundError as error:
            raise _missing_driver(self.display_uri, error) from None

    # ------------------------------------------------------------ error translation

    def _call(self, what: str, fn: Callable[..., T], *args: Any, missing: str | None = None, **kwargs: Any) -> T:
        from mlflow.exceptions import MlflowException, RestException

        try:
            return fn(*args, **kwargs)
        except (RestException, MlflowException) as error:
            code = getattr(error, "error_code", "") or ""
            text = _first_line(getattr(error, "message", None) or str(error))
            if code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND") and missing:
                raise UsageError(f"{missing} (tracking URI {self.display_uri})") from None
            if code in ("INVALID_PARAMETER_VALUE", "BAD_REQUEST") and missing:
                raise UsageError(f"{what}: {text} (tracking URI {self.display_uri})") from None
            if _looks_like_connection_error(text):
                raise RegistryError(f"cannot reach the tracking server at {self.display_uri} while trying to "
                                    f"{what}: {scrub_secrets(text)}") from None
            raise RegistryError(f"registry error while trying to {what} at {self.display_uri}: "
                                f"{scrub_secrets(text)}") from None
        except OSError as error:
            raise RegistryError(f"cannot reach the tracking server at {self.display_uri} while trying to "
                                f"{what}: {scrub_secrets(str(error))}") from None
        except ModuleNotFoundError as error:
            raise _missing_driver(self.display_uri, error) from None

    # ------------------------------------------------------------ reading

    def get_version(self, name: str, version: str) -> ModelVersionInfo:
        mv = self._call(f"read {name} version {version}", self._client.get_model_version, name, version,
                        missing=f"model version models:/{name}/{version} not found")
        return self._info(mv)

    def _info(self, mv: Any) -> ModelVersionInfo:
        download_uri = None
        if mv.status == READY:
            download_uri = self._call("read download URI", self._client.get_model_version_download_uri,
                                      mv.name, mv.version)
        return ModelVersionInfo(
            name=mv.name, version=str(mv.version), status=mv.status, source=mv.source or "",
            run_id=mv.run_id or None, current_stage=mv.current_stage or None,
            aliases=tuple(sorted(getattr(mv, "aliases", []) or [])), tags=dict(mv.tags or {}),
            download_uri=download_uri,
        )

    def alias_holder(self, name: str, alias: str) -> str | None:
        """The version an alias points to, or None when the alias (or the model) does not exist."""
        from mlflow.exceptions import MlflowException

        try:
            mv = self._client.get_model_version_by_alias(name, alias)
        except MlflowException as error:
            if getattr(error, "error_code", "") in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
                return None
            return self._call(f"read alias {alias} of {name}", _reraise, error)
        except OSError as error:
            return self._call(f"read alias {alias} of {name}", _reraise, error)
        # Read the version itself: search results and alias listings can be stale.
        return self.get_version(name, str(mv.version)).version if mv is not None else None

    def resolve(self, ref: ModelRef) -> ModelVersionInfo:
        """One concrete name + version for a registry reference."""
        if isinstance(ref, RegistryVersion):
            return self.get_version(ref.name, ref.version)
        if isinstance(ref, RegistryAlias):
            self.require_model(ref.name)
            version = self.alias_holder(ref.name, ref.alias)
            if version is None:
                raise UsageError(f"model {ref.name!r} has no alias {ref.alias!r} "
                                 f"(tracking URI {self.display_uri})")
            return self.get_version(ref.name, version)
        if isinstance(ref, RegistryLatest):
            return self._latest(ref.name, ref.stage)
        raise UsageError(f"{ref} is not a registry model reference")

    def require_model(self, name: str) -> None:
        self._call(f"read registered model {name}", self._client.get_registered_model, name,
                   missing=f"registered model {name!r} not found")

    def _latest(self, name: str, stage: str | None) -> ModelVersionInfo:
        self.require_model(name)
        versions = self._all_versions(name)
        if stage is not None:
            log.warning("models:/%s/%s uses a legacy stage; stages are deprecated in MLflow, prefer an alias",
                        name, stage)
            versions = [v for v in versions if (v.current_stage or "None") == stage]
        if not versions:
            where = f" in stage {stage}" if stage else ""
            raise UsageError(f"model {name!r} has no versions{where} (tracking URI {self.display_uri})")
        newest = max(versions, key=lambda v: int(v.version))
        return self.get_version(name, str(newest.version))

    def _all_versions(self, name: str) -> list[Any]:
        escaped = name.replace("'", "\\'")
        return list(self._call(f"list versions of {name}", self._client.search_model_versions,
                               f"name='{escaped}'"))

    def versions_in_stage(self, name: str, stage: str) -> list[str]:
        # Used after a transition; each listed version is re-read to avoid stale search data.
        candidates = [str(v.version) for v in self._all_versions(name)]
        return sorted((v for v in candidates if self.get_version(name, v).current_stage == stage), key=int)

    def run_metrics(self, run_id: str) -> dict[str, float]:
        run = self._call(f"read run {run_id}", self._client.get_run, run_id, missing=f"run {run_id} not found")
        return dict(run.data.metrics)

    def wait_ready(self, info: ModelVersionInfo, timeout_s: float, poll_s: float) -> ModelVersionInfo:
        deadline = time.monotonic() + timeout_s
        while info.status == PENDING:
            if time.monotonic() >= deadline:
                raise RegistryError(f"{info.uri} is still {PENDING} after {timeout_s:g}s "
                                    f"(tracking URI {self.display_uri}); nothing was promoted")
            time.sleep(min(poll_s, max(0.0, deadline - time.monotonic())))
            info = self.get_version(info.name, info.version)
        if info.status == FAILED:
            raise RejectedError(f"{info.uri} is {FAILED}: the registry could not register it")
        if info.status != READY:
            raise RegistryError(f"{info.uri} has unexpected status {info.status!r}")
        return info

    # ------------------------------------------------------------ downloading

    def download(self, info: ModelVersionInfo, dest: Path) -> Path:
        """Download exactly this version's artifacts once, into dest."""
        import mlflow.artifacts

        dest.mkdir(parents=True, exist_ok=True)
        # The version's own artifact location, not "models:/…": that form is looked up in the
        # default registry (MLFLOW_TRACKING_URI), not necessarily the one this gate talks to.
        source = info.download_uri or self._call(f"read download URI of {info.uri}",
                                                 self._client.get_model_version_download_uri, info.name, info.version)
        local = self._call(f"download {info.uri}", mlflow.artifacts.download_artifacts,
                           artifact_uri=source, dst_path=str(dest), tracking_uri=self.tracking_uri)
        return Path(local)

    def download_run_artifact(self, ref: RunArtifact, dest: Path) -> Path:
        import mlflow.artifacts

        dest.mkdir(parents=True, exist_ok=True)
        uri = f"runs:/{ref.run_id}/{ref.path}"
        local = self._call(f"download {uri}", mlflow.artifacts.download_artifacts, artifact_uri=uri,
                           dst_path=str(dest), tracking_uri=self.tracking_uri,
                           missing=f"run artifact {uri} not found")
        return Path(local)

    # ------------------------------------------------------------ writing

    def ensure_registered_model(self, name: str) -> bool:
        """Create the registered model if, and only if, it does not exist. True when created."""
        from mlflow.exceptions import MlflowException

        try:
            self._client.get_registered_model(name)
            return False
        except MlflowException as error:
            if getattr(error, "error_code", "") != "RESOURCE_DOES_NOT_EXIST":
                self._call(f"read registered model {name!r}", _reraise, error, missing=f"registered model {name!r}")
        except OSError as error:
            self._call(f"read registered model {name}", _reraise, error)
        try:
            self._client.create_registered_model(name)
        except MlflowException as error:
            if getattr(error, "error_code", "") == "RESOURCE_ALREADY_EXISTS":
                return False  # another run created it in between: that is what we wanted
            self._call(f"create registered model {name!r}", _reraise, error, missing=f"registered model {name!r}")
        return True

    def require_run_artifacts(self, run_id: str, path: str) -> None:
        """UsageError unless the run exists and has artifacts under `path`."""
        self._call(f"read run {run_id}", self._client.get_run, run_id, missing=f"run {run_id} not found")
        listed = self._call(f"list artifacts of run {run_id}", self._client.list_artifacts, run_id, path or None)
        if not listed:
            raise UsageError(f"run {run_id} has no artifacts under {path!r} (tracking URI {self.display_uri})")

    def create_version(self, name: str, source: str, run_id: str | None, model_id: str | None,
                       tags: dict[str, str] | None = None) -> ModelVersionInfo:
        mv = self._call(f"register a version of {name} from {source}", self._client.create_model_version,
                        name=name, source=source, run_id=run_id, model_id=model_id, tags=tags,
                        await_creation_for=0, missing=f"source {source} not found")
        return self._info(mv)

    def logged_model(self, ref: LoggedModel) -> Any:
        return self._call(f"read logged model {ref.model_id}", self._client.get_logged_model, ref.model_id,
                          missing=f"logged model {ref.model_id} not found")

    def log_folder(self, experiment: str, folder: Path, artifact_path: str, run_name: str) -> str:
        """Log a folder as the artifacts of a new run; returns the run id."""
        from mlflow.exceptions import MlflowException

        exp = self._call(f"read experiment {experiment}", self._client.get_experiment_by_name, experiment)
        if exp is None:
            try:
                experiment_id = self._client.create_experiment(experiment)
            except MlflowException:  # created concurrently by another run
                experiment_id = self._call(f"read experiment {experiment}", self._client.get_experiment_by_name,
                                           experiment).experiment_id
        else:
            experiment_id = exp.experiment_id
        run = self._call("create a run", self._client.create_run, experiment_id, run_name=run_name)
        self._call(f"upload {folder}", self._client.log_artifacts, run.info.run_id, str(folder), artifact_path)
        # MLflow prints a "View run" banner on stdout when a run ends; stdout is for our output only.
        import contextlib
        import sys

        with contextlib.redirect_stdout(sys.stderr):
            self._call("finish the run", self._client.set_terminated, run.info.run_id)
        return run.info.run_id

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self._call(f"set alias {alias} of {name} to version {version}",
                   self._client.set_registered_model_alias, name, alias, version)

    def set_version_tags(self, name: str, version: str, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self._call(f"tag {name} version {version}", self._client.set_model_version_tag,
                       name, version, key, value)

    def transition_stage(self, name: str, version: str, stage: str, archive_existing: bool) -> None:
        self._call(f"move {name} version {version} to stage {stage}",
                   self._client.transition_model_version_stage, name, version, stage,
                   archive_existing_versions=archive_existing)

    def copy_version(self, source: ModelVersionInfo, dst_name: str) -> ModelVersionInfo:
        mv = self._call(f"copy {source.uri} to {dst_name}", self._client.copy_model_version,
                        src_model_uri=source.uri, dst_name=dst_name)
        return self._info(mv)

    # ------------------------------------------------------------ promotion lock

    def acquire_lock(self, name: str, owner: str, timeout_s: float, stale_after_s: float) -> str:
        """A registry-wide mutex: a registered model whose creation is atomic in the backend store.

        MLflow has no compare-and-set for aliases, but creating a registered model that already
        exists fails with RESOURCE_ALREADY_EXISTS, so exactly one gate holds the lock at a time.
        """
        from mlflow.exceptions import MlflowException

        lock_name = f"{name}{LOCK_SUFFIX}"
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self._client.create_registered_model(
                    lock_name, tags={"model_gate.lock_owner": owner, "model_gate.lock_at": f"{time.time():.3f}"},
                    description="Held by model-gate while it promotes; deleted when done.")
                return lock_name
            except MlflowException as error:
                if getattr(error, "error_code", "") != "RESOURCE_ALREADY_EXISTS":
                    self._call(f"take the promotion lock {lock_name}", _reraise, error)
            except OSError as error:
                self._call(f"take the promotion lock {lock_name}", _reraise, error)
            self._break_stale_lock(lock_name, stale_after_s)
            if time.monotonic() >= deadline:
                raise RegistryError(f"another model-gate run holds the promotion lock {lock_name!r} for more than "
                                    f"{timeout_s:g}s; nothing was promoted")
            time.sleep(0.2)

    def _break_stale_lock(self, lock_name: str, stale_after_s: float) -> None:
        from mlflow.exceptions import MlflowException

        try:
            model = self._client.get_registered_model(lock_name)
            taken = float((model.tags or {}).get("model_gate.lock_at", "0"))
            if time.time() - taken > stale_after_s:
                log.warning("breaking stale promotion lock %s (taken %.0fs ago)", lock_name, time.time() - taken)
                self._client.delete_registered_model(lock_name)
        except (MlflowException, ValueError):
            pass  # the lock vanished or is unreadable: the next create attempt decides

    def release_lock(self, lock_name: str) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self._client.delete_registered_model(lock_name)
        except MlflowException as error:
            log.warning("could not release promotion lock %s: %s", lock_name, _first_line(str(error)))


TRACKING_SCHEMES = ("http", "https", "databricks", "databricks-uc", "sqlite", "postgresql", "mysql", "mssql")


def _check_tracking_uri(uri: str, what: str = "tracking URI") -> None:
    """Refuse a URI MLflow would fail on later with a confusing message (or a traceback)."""
    shown = redact_uri(uri)
    if problem := server_uri_problem(uri):
        raise UsageError(f"{what} {shown!r}: {problem}")
    scheme = uri.split("://", 1)[0].split("+")[0].lower() if "://" in uri else ""
    if scheme not in TRACKING_SCHEMES:
        raise UsageError(f"{what} {shown!r}: unsupported scheme {scheme or '(none)'!r}; use an MLflow server "
                         "(http:// or https://) or a database URI (sqlite, postgresql, mysql, mssql)")
    if scheme == "sqlite" and (database := sqlite_database(uri)) is not None and not database.is_file():
        # MLflow would create an empty registry there and report "not found": a typo should say so.
        raise UsageError(f"{what} {shown!r}: no SQLite database at {database}; the gate does not create "
                         "registries (check the path, or create it with `mlflow server --backend-store-uri ...`)")


def _missing_driver(display_uri: str, error: ModuleNotFoundError) -> UsageError:
    """A database URI whose driver (psycopg, pymysql, ...) is not installed: a setup problem, exit 2."""
    return UsageError(f"tracking URI {display_uri} needs the Python module {error.name!r}, which is not "
                      "installed here; use the MLflow server's http(s):// URI, or install the database driver")


def sqlite_database(uri: str) -> Path | None:
    """The file of a sqlite:/// URI (sqlite:///rel.db, sqlite:////abs.db), None for an in-memory one."""
    path = uri.split("://", 1)[1].split("?", 1)[0]
    path = path[1:] if path.startswith("/") else path
    return None if path in ("", ":memory:") else Path(path)


def _reraise(error: BaseException) -> None:
    raise error


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


def _looks_like_connection_error(text: str) -> bool:
    needles = ("Max retries exceeded", "Connection refused", "ConnectionError", "Failed to establish",
               "timed out", "Name or service not known", "API request to", "NewConnectionError")
    return any(n in text for n in needles)
