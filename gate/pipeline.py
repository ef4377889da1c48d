"""The gate, stage by stage: resolve -> download once -> integrity -> formats -> load/smoke/evaluate
-> thresholds -> promotion + audit tags -> report.

Orchestration only: every stage's logic lives in its own module. Nothing is
written to the registry unless every blocking check passed (audit tags of a
rejection excepted) and this is not a dry run.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from gate.errors import ExitCode, GateError, InternalError, UsageError
from gate.mlmodel import read_mlmodel
from gate.policy import LoadedPolicy, load_policy
from gate.registry import ModelVersionInfo, Registry
from gate.requirements import check_requirements
from gate.results import CheckResult, Status
from gate.thresholds import Baseline, evaluate_threshold
from gate.uris import (
    LocalFolder,
    LoggedModel,
    ObjectStore,
    RunArtifact,
    is_registry_ref,
    parse_model_uri,
    redact_uri,
    require_model_name,
)

log = logging.getLogger("gate")


@dataclass(frozen=True)
class GateOptions:
    policy_path: Path
    model_uri: str
    dry_run: bool = False
    tracking_uri: str | None = None
    register_as: str | None = None  # register a non-registry model (folder, s3, run) when it passes
    workdir: Path | None = None  # where downloads go; a temp folder by default
    keep_workdir: bool = False


@dataclass
class GateRun:
    """What a run found; the report and the exit code are computed from it."""

    options: GateOptions
    started_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    loaded: LoadedPolicy | None = None
    tracking_uri: str | None = None
    candidate: ModelVersionInfo | None = None
    checks: list[CheckResult] = field(default_factory=list)
    decision: str = "error"
    previous_version: str | None = None
    promotion: dict[str, Any] = field(default_factory=dict)
    error: GateError | None = None
    content: Any = None  # gate.content.ContentDigest of the candidate's files, once computed
    timings: dict[str, float] = field(default_factory=dict)
    duration_s: float = 0.0

    @property
    def blocked(self) -> bool:
        return any(c.blocking for c in self.checks)

    @property
    def exit_code(self) -> ExitCode:
        if self.error is not None:
            return self.error.exit_code
        return ExitCode.REJECTED if self.decision == "rejected" else ExitCode.PASSED

    def report(self) -> dict[str, Any]:
        model: dict[str, Any] = {"uri": self.options.model_uri}
        if self.candidate is not None:
            model.update(name=self.candidate.name, version=self.candidate.version,
                         source=redact_uri(self.candidate.source), run_id=self.candidate.run_id)
        if self.content is not None:
            model.update(content_sha256=self.content.digest, files=self.content.files)
        return {
            "decision": self.decision,
            "exit_code": int(self.exit_code),
            "dry_run": self.options.dry_run,
            "model": model,
            "previous_version": self.previous_version,
            "promotion": self.promotion,
            "policy": {"path": str(self.options.policy_path),
                       "sha256": self.loaded.sha256 if self.loaded else ""},
            "tracking_uri": redact_uri(self.tracking_uri),
            "checks": [c.to_dict() for c in self.checks],
            "error": str(self.error) if self.error else None,
            "started_at": self.started_at.isoformat(timespec="seconds"),
            "duration_s": round(self.duration_s, 3),
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }


def run_gate(options: GateOptions, progress: Callable[[str], None] = lambda _: None) -> GateRun:
    """Run the gate. A policy error raises before anything else; later errors are recorded in the run."""
    run = GateRun(options=options)
    started = time.perf_counter()
    run.loaded = load_policy(options.policy_path)
    workdir = options.workdir or Path(tempfile.mkdtemp(prefix="model-gate-"))
    stages = _Stages(run, workdir, progress)
    try:
        stages.execute()
    except GateError as error:
        run.error = error
        run.decision = "error" if error.exit_code != ExitCode.REJECTED else "rejected"
        if error.exit_code == ExitCode.REJECTED:
            run.checks.append(CheckResult("resolve", "resolve", Status.FAILED, str(error)))
    except Exception as error:  # keep the report: say what broke, without secrets
        from gate.uris import scrub_secrets

        log.debug("unexpected error", exc_info=True)
        detail = str(error).strip().splitlines()[0] if str(error).strip() else ""
        run.error = InternalError(f"unexpected {type(error).__name__}: {scrub_secrets(detail)}")
        run.decision = "error"
    finally:
        stages.close()
        run.duration_s = time.perf_counter() - started
        if not options.keep_workdir and options.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    return run


class _Stages:
    def __init__(self, run: GateRun, workdir: Path, progress: Callable[[str], None]) -> None:
        self.run = run
        self.workdir = workdir
        self.progress = progress
        self.loaded: LoadedPolicy = run.loaded  # type: ignore[assignment]
        self.policy = self.loaded.policy
        self._registry: Registry | None = None
        self.digests: dict[str, str] | None = None
        self.processes: dict[str, Any] = {}
        self.runner_files: Any = None  # gate.runner_files.RunnerFiles, noted when model code first starts
        self.run_as: tuple[int, int] | None = None  # the user model code runs as (MODEL_GATE_MODEL_USER)
        self.children_before: set[int] = set()  # the gate's child processes before model code started
        self.baseline_problem: str | None = None  # why the baseline could not be measured, if it could not
        self.baseline_errors: dict[str, str] = {}  # metrics the baseline's predictions could not give

    def process(self, label: str) -> Any:
        """The child process for `label`, started now if it is not running yet (see ModelProcess)."""
        from gate.sandbox import ModelProcess

        if label not in self.processes:
            if self.runner_files is None:
                from gate.runner_files import RunnerFiles
                from gate.sandbox import adopt_orphans

                self.runner_files = RunnerFiles(os.environ)  # before any model code can touch them
                self.children_before = adopt_orphans()
            process = ModelProcess(self.workdir / f"{label}-process", label,
                                   pass_env=frozenset(self.policy.load.pass_env), run_as=self.run_as)
            self.processes[label] = process.__enter__()
        return self.processes[label]

    def close(self) -> None:
        try:
            self.end_model_code()
        except Exception:  # cleaning up must not replace the error that brought the run here
            log.warning("could not stop the model processes cleanly", exc_info=log.isEnabledFor(logging.DEBUG))

    def end_model_code(self) -> None:
        """Stop every model process, then undo and report any change model code made to the runner's
        command files. Runs before the registry is written to and before the gate's own outputs."""
        for process in self.processes.values():
            process.close()
        if self.runner_files is None:
            return
        from gate.sandbox import kill_leftovers

        if leftovers := kill_leftovers(self.children_before):
            self.run.checks.append(CheckResult(
                "load.leftovers", "load", Status.WARNED,
                f"model code left {len(leftovers)} process(es) running after it was stopped; they were killed",
                value=len(leftovers)))
        restored, lost = self.runner_files.restore_changed()
        self.runner_files = None
        if restored or lost:
            names = ", ".join(f"${v}" for v in restored + lost)
            what = "put back as it was" if not lost else f"could not put back {', '.join(lost)}"
            self.run.checks.append(CheckResult(
                "load.runner_files", "load", Status.FAILED,
                f"model code wrote to the runner's command file(s) {names} ({what}); a model that "
                "tries to change the workflow or forge the gate's outputs is not promoted"))

    # --------------------------------------------------------------- helpers

    def registry(self) -> Registry:
        if self._registry is None:
            uri = self.run.options.tracking_uri or self.policy.registry.tracking_uri
            self._registry = Registry(uri, self.policy.registry.registry_uri)
            self.run.tracking_uri = self._registry.tracking_uri
            self.progress(f"tracking URI: {self._registry.display_uri}")
        return self._registry

    def start_content_digest(self, model_dir: Path) -> None:
        from concurrent.futures import ThreadPoolExecutor

        from gate.content import content_digest

        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="content-digest")
        self._content_future = pool.submit(content_digest, model_dir, self.digests)
        pool.shutdown(wait=False)

    def content_sha256(self) -> str | None:
        """The digest of the gated files (waits for the hashing started after the checks)."""
        future = getattr(self, "_content_future", None)
        if future is None:
            return None
        if self.run.content is None:
            self.run.content = self.timed("content_digest", future.result)
            if self.run.content.problem:
                log.warning("no content digest: %s", self.run.content.problem)
        return self.run.content.digest

    def timed(self, name: str, fn: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        try:
            return fn()
        finally:
            self.run.timings[name] = self.run.timings.get(name, 0.0) + time.perf_counter() - started

    def add(self, checks: list[CheckResult]) -> bool:
        """Record checks; True when the gate may go on."""
        self.run.checks.extend(checks)
        return not any(c.blocking for c in checks)

    # --------------------------------------------------------------- stages

    def execute(self) -> None:
        options = self.run.options
        ref = parse_model_uri(options.model_uri)
        if options.register_as and is_registry_ref(ref):
            raise UsageError(f"--register-as is for folders, runs:/ and s3:// models; {options.model_uri} "
                             "is already a registry version")
        if options.register_as:
            require_model_name(options.register_as, "--register-as")  # a typo fails now, not after the checks
        if self.policy.smoke or self.policy.evaluation:
            from gate.sandbox import model_user

            self.run_as = model_user()
            self.process("candidate")  # its imports overlap resolution, download and the checks
        model_dir = self.timed("resolve_download", lambda: self.resolve_and_download(ref))
        if not self.pre_load_checks(model_dir, self.digests):
            return self.finish(rejected=True)
        if (self.policy.smoke or self.policy.evaluation) and not self.add(
                check_requirements(model_dir, self.policy.load.requirements)):
            return self.finish(rejected=True)
        self.start_content_digest(model_dir)  # hashes while the model process loads the model
        if self.policy.evaluation is not None:
            # Needed for the metrics once predictions arrive; imported while the model process loads
            # the model (earlier, it would compete for the GIL with mlflow's import and the checks).
            _import_in_background("sklearn.metrics")
        target = self.timed("baseline_lookup", self.promotion_target)
        baseline_info = self.timed("baseline_lookup", lambda: self.baseline_version(target))
        if baseline_info is not None and self.policy.evaluation is not None:
            self.process("baseline")  # warms up while the candidate runs
        candidate_run = self.timed("candidate", lambda: self.evaluate("candidate", model_dir))
        if candidate_run.failed:
            return self.finish(rejected=True)
        baseline_metrics, baseline = self.timed("baseline", lambda: self.evaluate_baseline(baseline_info, candidate_run))
        self.end_model_code()  # no model code runs while the registry is written to
        self.thresholds(candidate_run, baseline_metrics, baseline)
        if self.run.blocked:
            return self.finish(rejected=True)
        if options.dry_run:
            self.run.decision = "dry-run-passed"
            return self.finish(rejected=False)
        if self.run.candidate is None and options.register_as:
            self.run.candidate = self.register_candidate(ref, model_dir)
            target = self.promotion_target()
        if self.run.candidate is None or target is None:
            self.run.decision = "passed"
            return self.finish(rejected=False)
        self.promote(target)

    def resolve_and_download(self, ref: Any) -> Path:
        dest = self.workdir / "candidate"
        if is_registry_ref(ref):
            registry = self.registry()
            info = registry.resolve(ref)
            self.progress(f"resolved {self.run.options.model_uri} -> {info.uri} ({info.status})")
            info = registry.wait_ready(info, self.policy.registry.ready_timeout_s, self.policy.registry.poll_interval_s)
            self.run.candidate = info
            self.run.checks.append(CheckResult("resolve", "resolve", Status.PASSED,
                                               f"{self.run.options.model_uri} is {info.uri} ({info.status})",
                                               value=info.version))
            return registry.download(info, dest)
        if isinstance(ref, LocalFolder):
            path = ref.path.resolve()
            if not path.exists():
                raise UsageError(f"model folder {ref.path} does not exist")
            if not path.is_dir():
                raise UsageError(f"model path {ref.path} is not a folder")
            self.run.checks.append(CheckResult("resolve", "resolve", Status.PASSED, f"local folder {path}"))
            return path
        if isinstance(ref, ObjectStore):
            from gate.storage.fetch import download_model

            result = download_model(ref.uri, dest)
            self.digests = dict(result.digests)
            self.run.checks.append(CheckResult("resolve", "resolve", Status.PASSED,
                                               f"downloaded {ref.uri} ({len(result.digests)} files)"))
            return Path(result.path)
        if isinstance(ref, RunArtifact):
            path = self.registry().download_run_artifact(ref, dest)
            self.run.checks.append(CheckResult("resolve", "resolve", Status.PASSED,
                                               f"downloaded run artifact {self.run.options.model_uri}"))
            return path
        if isinstance(ref, LoggedModel):
            raise UsageError(f"{self.run.options.model_uri} is a logged model, not a registry version: register it "
                             "first with `model-gate register --name NAME --source " + self.run.options.model_uri + "`")
        raise UsageError(f"unsupported model URI {self.run.options.model_uri}")

    def pre_load_checks(self, model_dir: Path, digests: dict[str, str] | None, prefix: str = "") -> bool:
        """Signature, then weight formats: before a single byte of model code runs."""
        from gate.formats.gate_check import check_formats
        from gate.signing.gate_check import check_integrity

        integrity = self.timed(f"{prefix}integrity", lambda: check_integrity(
            self.policy.integrity, model_dir, base_dir=self.loaded.path.parent, precomputed_digests=digests))
        integrity = [_prefixed(c, prefix) for c in integrity]
        if not self.add(integrity):
            return False
        signed = frozenset()
        for check in integrity:
            if check.status == Status.PASSED and check.details.get("verified"):
                signed = frozenset(check.details.get("files") or [])
        formats = self.timed(f"{prefix}formats", lambda: check_formats(self.policy.formats, model_dir,
                                                                       signed_files=signed))
        return self.add([_prefixed(c, prefix) for c in formats])

    def promotion_target(self) -> Any:
        from gate.promotion import current_target

        name = self.run.candidate.name if self.run.candidate else self.run.options.register_as
        if name is None:
            return None
        copy_to = self.policy.promotion.copy_to
        if copy_to is not None and copy_to.name == name:
            # Each run would add a copy of the model to itself and move the alias to it, even for the champion.
            raise UsageError(f"promotion.copy_to.name {name!r} is the candidate's own registered model: copy to "
                             "another model (the production one), or use promotion.alias to promote in place")
        target = current_target(self.registry(), self.policy.promotion, name)
        self.run.previous_version = target.holder
        return target

    def baseline_version(self, target: Any) -> ModelVersionInfo | None:
        evaluation = self.policy.evaluation
        needs_baseline = any(t.compares_baseline for t in self.policy.thresholds.values())
        if not needs_baseline or (evaluation is not None and not evaluation.baseline.enabled):
            return None
        name = self.run.candidate.name if self.run.candidate else self.run.options.register_as
        if name is None:
            return None
        spec = evaluation.baseline if evaluation is not None else None
        registry = self.registry()
        if spec is not None and spec.version is not None:
            return registry.get_version(name, str(spec.version))
        if spec is not None and spec.alias is not None:
            version = registry.alias_holder(name, spec.alias)
            if version is None and (target is None or spec.alias != target.alias):
                # Only the promotion alias may be missing (a first deployment): another one is a typo
                # that would otherwise turn the comparison off without a word.
                raise UsageError(f"evaluation.baseline.alias: model {name} has no alias {spec.alias!r} (only the "
                                 "promotion alias may be missing: then there is no baseline yet)")
            return registry.get_version(name, version) if version else None
        if target is None or target.holder is None:
            return None
        return registry.get_version(target.model_name, target.holder)

    def evaluate(self, label: str, model_dir: Path, smoke: bool = True) -> Any:
        from gate.evaluate import ModelRun, prepare_evaluation, run_model

        evaluation = self.policy.evaluation
        metric_names = self.metric_names()
        if getattr(self, "_evaluation_data", None) is None and evaluation is not None:
            self._evaluation_data = prepare_evaluation(evaluation, self.loaded.resolve_path(evaluation.dataset),
                                                       self.workdir)
        _, mlmodel_problem = read_mlmodel(model_dir)
        if mlmodel_problem is not None:
            result = ModelRun(label=label)
            if self.policy.smoke or evaluation:
                prefix = "" if label == "candidate" else f"{label}."
                result.checks.append(CheckResult(
                    f"{prefix}load", "load", Status.FAILED,
                    f"{mlmodel_problem}, so it cannot be loaded for smoke tests or evaluation"))
        else:
            if self.run_as is not None and model_dir.resolve().is_relative_to(self.workdir.resolve()):
                from gate.sandbox import open_to_model_user

                open_to_model_user(model_dir, self.workdir)  # downloaded by the gate; a local folder stays as it is
            result = run_model(label=label, process=self.process(label), model_dir=model_dir,
                               load_timeout_s=self.policy.load.timeout_s,
                               smoke=self.policy.smoke if smoke else None, resolve_path=self.loaded.resolve_path,
                               evaluation=evaluation, evaluation_data=getattr(self, "_evaluation_data", None),
                               metrics=metric_names)
            self.run.timings[f"{label}_load"] = result.load_s
            self.run.timings[f"{label}_predict"] = result.predict_s
            self.run.timings[f"{label}_imports"] = result.import_s
        if label == "candidate":
            self.add(result.checks)
        else:
            self.add(self.baseline_warnings(result.checks))
        return result

    def baseline_warnings(self, checks: list[CheckResult]) -> list[CheckResult]:
        """A broken baseline's own checks are warnings; the comparisons that need its metrics fail."""
        failed = [c for c in checks if c.blocking]
        if failed and self.baseline_problem is None:
            self.baseline_problem = f"{failed[0].name}: {failed[0].message}"
        return [replace(c, status=Status.WARNED) if c.blocking else c for c in checks]

    def metric_names(self) -> list[str]:
        evaluation = self.policy.evaluation
        if evaluation is None:
            return []
        extra = [n for n, t in self.policy.thresholds.items() if t.source == "evaluation"]
        return evaluation.selected_metrics(extra)

    def evaluate_baseline(self, info: ModelVersionInfo | None, candidate_run: Any) -> tuple[dict, Baseline]:
        if info is None:
            return {}, Baseline(version=None, missing_reason="no current champion to compare with")
        candidate = self.run.candidate
        same = candidate is not None and (candidate.name, candidate.version) == (info.name, info.version)
        if same:
            self.add([CheckResult("baseline", "evaluation", Status.WARNED,
                                  f"candidate and baseline are the same version ({info.uri}); "
                                  "improvement thresholds cannot pass", value=info.version)])
            metrics = dict(candidate_run.metrics.values) if candidate_run.metrics else {}
            metrics.update(self.run_metrics(info))
            return metrics, Baseline(version=info.version, same_as_candidate=True)
        metrics: dict[str, float] = dict(self.run_metrics(info))
        if self.policy.evaluation is not None:
            dest = self.workdir / "baseline-model"
            model_dir = self.registry().download(info, dest)
            self.progress(f"baseline: {info.uri}")
            checked_from = len(self.run.checks)
            if self.pre_load_checks(model_dir, None, prefix="baseline."):
                result = self.evaluate("baseline", model_dir, smoke=False)
                if result.metrics is not None:
                    metrics.update(result.metrics.values)
                    self.baseline_errors = dict(result.metrics.errors)
            else:
                self.run.checks[checked_from:] = self.baseline_warnings(self.run.checks[checked_from:])
        if self.baseline_problem is not None:
            self.add([CheckResult("baseline", "evaluation", Status.WARNED, f"baseline is {info.uri}, but it could not "
                                  f"be evaluated ({self.baseline_problem})", value=info.version)])
        else:
            self.add([CheckResult("baseline", "evaluation", Status.PASSED, f"baseline is {info.uri}",
                                  value=info.version)])
        return metrics, Baseline(version=info.version)

    def run_metrics(self, info: ModelVersionInfo) -> dict[str, float]:
        if not any(t.source == "run" for t in self.policy.thresholds.values()) or not info.run_id:
            return {}
        return {f"run:{k}": v for k, v in self.registry().run_metrics(info.run_id).items()}

    def thresholds(self, candidate_run: Any, baseline_metrics: dict[str, float], baseline: Baseline) -> None:
        baseline_errors = self.baseline_errors
        candidate_metrics = dict(candidate_run.metrics.values) if candidate_run.metrics else {}
        errors = dict(candidate_run.metrics.errors) if candidate_run.metrics else {}
        if any(t.source == "run" for t in self.policy.thresholds.values()):
            if self.run.candidate is not None and self.run.candidate.run_id:
                candidate_metrics.update(self.run_metrics(self.run.candidate))
        checks = []
        for name, rule in self.policy.thresholds.items():
            key = f"run:{name}" if rule.source == "run" else name
            value = candidate_metrics.get(key)
            reason = errors.get(name)
            if value is None and rule.source == "run":
                reason = ("the model has no source run" if self.run.candidate is None or not self.run.candidate.run_id
                          else f"metric {name!r} was not logged on run {self.run.candidate.run_id}")
            base_value = baseline_metrics.get(key)
            this_baseline = replace(baseline, value=base_value)
            if baseline.version is not None and base_value is None and baseline.missing_reason is None:
                if rule.source == "run":  # like a first deployment of this metric: on_missing_baseline decides
                    this_baseline = replace(this_baseline, missing_reason=f"metric {name!r} was not logged on the "
                                                                          f"run of baseline version {baseline.version}")
                else:
                    reason = (baseline_errors.get(name) or self.baseline_problem
                              or f"it has no {name}")
                    this_baseline = replace(this_baseline, unavailable=reason)
            checks.append(evaluate_threshold(name, rule, value, this_baseline, missing_reason=reason))
        self.add(checks)

    def register_candidate(self, ref: Any, model_dir: Path) -> ModelVersionInfo:
        from gate.registration import register_folder

        info = register_folder(self.registry(), self.run.options.register_as, model_dir,
                               self.policy.registry.ready_timeout_s, self.policy.registry.poll_interval_s)
        self.progress(f"registered {self.run.options.model_uri} as {info.uri}")
        return info

    def promote(self, target: Any) -> None:
        from gate.promotion import promote

        digest = self.content_sha256()
        result = self.timed("promotion", lambda: promote(self.registry(), self.loaded, self.run.candidate, target,
                                                         content_sha256=digest))
        self.add([result.check])
        self.run.promotion = result.details
        if result.check.blocking:
            return self.finish(rejected=True)
        self.run.decision = "promoted"

    def finish(self, rejected: bool) -> None:
        self.end_model_code()
        self.content_sha256()
        if rejected:
            self.run.decision = "rejected"
            self.write_rejection_tags()

    def write_rejection_tags(self) -> None:
        """Record the rejection on the version (an audit trail); aliases and stages stay untouched."""
        from gate.promotion import audit_tags

        candidate = self.run.candidate
        if candidate is None or self.run.options.dry_run:
            return
        from gate.promotion import recheck_tags

        failed = ", ".join(c.name for c in self.run.checks if c.blocking)[:4000]
        try:
            target = self.promotion_target()
            digest = self.run.content.digest if self.run.content is not None else None
            if target is not None and target.mode != "copy_to" and target.holder == candidate.version:
                # The version already holds its place: keep its promotion record, record the re-check.
                tags = recheck_tags("rejected", self.loaded, failed)
                if digest:
                    tags["model_gate.recheck_content_sha256"] = digest
            else:
                tags = audit_tags("rejected", self.loaded, self.run.previous_version, None)
                tags["model_gate.failed_checks"] = failed
                if digest:
                    tags["model_gate.content_sha256"] = digest
            self.registry().set_version_tags(candidate.name, candidate.version, tags)
        except GateError as error:
            log.warning("could not record the rejection on %s: %s", candidate.uri, error)


def _import_in_background(module: str) -> None:
    """Start a slow import on a thread; a later `import` of it waits for this one to finish."""
    import importlib
    import threading

    threading.Thread(target=importlib.import_module, args=(module,), daemon=True, name=f"import {module}").start()


def _prefixed(check: CheckResult, prefix: str) -> CheckResult:
    return replace(check, name=f"{prefix}{check.name}") if prefix else check
