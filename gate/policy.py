"""The gate policy: its schema (pydantic) and a loader that reports errors by key path and line.

A policy is YAML with `version: 1`. Unknown keys are errors, so a typo never
silently disables a check. String values may use `${VAR}` or `${VAR:-default}`.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gate.errors import PolicyError
from gate.formats.policy import FormatsPolicy
from gate.signing.policy import IntegrityPolicy
from gate.uris import alias_problem, model_name_problem

CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")
REGRESSION_METRICS = ("mae", "rmse", "r2")
LATENCY_METRICS = ("latency_p50_ms", "latency_p95_ms")
# Direction each evaluation metric improves in; a threshold must still state it (no guessing),
# and the policy check refuses a direction that contradicts the metric.
METRIC_DIRECTIONS = {
    "accuracy": "higher", "precision": "higher", "recall": "higher", "f1": "higher",
    "roc_auc": "higher", "log_loss": "lower", "mae": "lower", "rmse": "lower", "r2": "higher",
    "latency_p50_ms": "lower", "latency_p95_ms": "lower",
}
CANONICAL_STAGES = ("Staging", "Production", "Archived")


class _Strict(BaseModel):
    # strict: a YAML `true` or "0.9" where a number belongs is an error, not a silent conversion
    model_config = ConfigDict(extra="forbid", strict=True)


def _positive(value: float, what: str) -> float:
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{what} must be a positive number of seconds, got {value}")
    return value


class RegistryPolicy(_Strict):
    tracking_uri: str | None = None  # falls back to MLFLOW_TRACKING_URI, then --tracking-uri
    registry_uri: str | None = None
    ready_timeout_s: float = 300.0  # how long a version may stay PENDING_REGISTRATION
    poll_interval_s: float = 1.0

    @field_validator("ready_timeout_s", "poll_interval_s")
    @classmethod
    def _check_positive(cls, value: float) -> float:
        return _positive(value, "the value")


class LoadPolicy(_Strict):
    timeout_s: float = 300.0  # loading the model in the child process
    # Environment variables model code gets even though they look like credentials or registry
    # settings (which are withheld from the model process by default).
    pass_env: list[str] = Field(default_factory=list)
    # The model's requirements.txt against the installed packages: a mismatch means the scores
    # measured here may not be the ones seen where the model is served.
    requirements: Literal["warn", "fail", "ignore"] = "warn"

    @field_validator("timeout_s")
    @classmethod
    def _check_positive(cls, value: float) -> float:
        return _positive(value, "timeout_s")


class Tolerance(_Strict):
    abs: float = 1e-6
    rel: float = 0.0


class SmokeInput(_Strict):
    """Exactly one of: records (list of dicts), rows (+ columns), strings, file."""

    records: list[dict[str, Any]] | None = None
    rows: list[list[Any]] | None = None
    columns: list[str] | None = None
    strings: list[str] | None = None
    file: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SmokeInput:
        given = [k for k in ("records", "rows", "strings", "file") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of records, rows, strings or file")
        if self.columns is not None and self.rows is None:
            raise ValueError("columns is only used with rows")
        if self.rows is not None and self.columns is not None:
            bad = [i for i, row in enumerate(self.rows) if len(row) != len(self.columns)]
            if bad:
                raise ValueError(f"row {bad[0]} has a different length than columns")
        for key in ("records", "rows", "strings"):
            value = getattr(self, key)
            if value is not None and len(value) == 0:
                raise ValueError(f"{key} is empty")
        return self


class SmokeExpect(_Strict):
    rows: int | None = Field(default=None, ge=0)  # number of output rows
    finite: bool = True  # every numeric output is finite
    output_type: Literal["ndarray", "dataframe", "series", "list"] | None = None
    columns: list[str] | None = None
    shape: list[int | None] | None = None  # e.g. [1, 384]; null matches any size
    values: list[Any] | None = None  # expected outputs, compared with tolerance
    tolerance: Tolerance = Field(default_factory=Tolerance)
    max_latency_ms: float | None = Field(default=None, gt=0)


class SmokeCase(_Strict):
    name: str = Field(min_length=1)
    input: SmokeInput
    expect: SmokeExpect = Field(default_factory=SmokeExpect)


class SmokePolicy(_Strict):
    timeout_s: float = 120.0  # all smoke cases together
    cases: list[SmokeCase] = Field(min_length=1)

    @field_validator("timeout_s")
    @classmethod
    def _check_positive(cls, value: float) -> float:
        return _positive(value, "timeout_s")

    @model_validator(mode="after")
    def _unique_names(self) -> SmokePolicy:
        names = [case.name for case in self.cases]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"smoke case names must be unique, repeated: {', '.join(dupes)}")
        return self


class BaselinePolicy(_Strict):
    """Which version the candidate is compared with: the alias holder (default) or a fixed version."""

    alias: str | None = None  # default: the promotion alias
    version: int | None = Field(default=None, ge=1)
    enabled: bool = True

    @model_validator(mode="after")
    def _one_of(self) -> BaselinePolicy:
        if self.alias is not None and self.version is not None:
            raise ValueError("give baseline.alias or baseline.version, not both")
        return self


class EvaluationPolicy(_Strict):
    dataset: str  # CSV, Parquet or JSON lines; relative paths are relative to the policy file
    format: Literal["auto", "csv", "parquet", "jsonl"] = "auto"
    target: str
    task: Literal["classification", "regression"]
    features: list[str] | None = None  # default: every column but the target
    metrics: list[str] | None = None  # default: every metric of the task, plus latency
    average: Literal["binary", "micro", "macro", "weighted"] = "macro"
    pos_label: Any = None
    timeout_s: float = 600.0
    batch_size: int = Field(default=1024, ge=1)
    baseline: BaselinePolicy = Field(default_factory=BaselinePolicy)

    @field_validator("timeout_s")
    @classmethod
    def _check_positive(cls, value: float) -> float:
        return _positive(value, "timeout_s")

    @model_validator(mode="after")
    def _known_metrics(self) -> EvaluationPolicy:
        if self.features is not None and self.target in self.features:
            raise ValueError(f"features include the target column {self.target!r}: the model would be given "
                             "the answer it is scored on")
        allowed = self.available_metrics()
        for name in self.metrics or []:
            if name not in allowed:
                raise ValueError(
                    f"metric {name!r} is not available for task {self.task}; choose from {', '.join(allowed)}"
                )
        return self

    def available_metrics(self) -> tuple[str, ...]:
        task_metrics = CLASSIFICATION_METRICS if self.task == "classification" else REGRESSION_METRICS
        return task_metrics + LATENCY_METRICS

    def selected_metrics(self, extra: list[str]) -> list[str]:
        chosen = list(self.metrics) if self.metrics is not None else list(self.available_metrics())
        return chosen + [m for m in extra if m not in chosen]


class Threshold(_Strict):
    direction: Literal["higher", "lower"]
    min: float | None = None
    max: float | None = None
    min_delta_abs: float | None = None  # improvement over the baseline required
    min_delta_rel: float | None = None
    max_regression_abs: float | None = Field(default=None, ge=0)  # tolerated worsening
    max_regression_rel: float | None = Field(default=None, ge=0)
    severity: Literal["fail", "warn"] = "fail"
    source: Literal["evaluation", "run"] = "evaluation"
    on_missing_baseline: Literal["skip", "fail"] = "skip"

    @model_validator(mode="after")
    def _consistent(self) -> Threshold:
        for key in ("min", "max", "min_delta_abs", "min_delta_rel", "max_regression_abs", "max_regression_rel"):
            value = getattr(self, key)
            if value is not None and not math.isfinite(value):
                raise ValueError(f"{key} must be a finite number")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        if not any(getattr(self, k) is not None for k in self.model_fields if k not in
                   ("direction", "severity", "source", "on_missing_baseline")):
            raise ValueError("a threshold needs at least one of min, max, min_delta_*, max_regression_*")
        return self

    @property
    def compares_baseline(self) -> bool:
        return any(
            v is not None
            for v in (self.min_delta_abs, self.min_delta_rel, self.max_regression_abs, self.max_regression_rel)
        )


class CopyTo(_Strict):
    name: str = Field(min_length=1)  # the production registered model
    alias: str = "champion"

    @field_validator("name")
    @classmethod
    def _name_ok(cls, value: str) -> str:
        problem = model_name_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("alias")
    @classmethod
    def _alias_ok(cls, value: str) -> str:
        return _check_alias(value)


def _check_alias(value: str) -> str:
    problem = alias_problem(value)
    if problem:
        raise ValueError(problem)
    return value


class PromotionPolicy(_Strict):
    alias: str | None = None  # default "champion" when neither stage nor copy_to is given
    stage: str | None = None  # legacy stages: Staging or Production
    archive_existing: bool = True  # stage mode: archive the versions that held the stage
    copy_to: CopyTo | None = None
    tags: dict[str, str] = Field(default_factory=dict)

    @field_validator("alias")
    @classmethod
    def _alias_ok(cls, value: str | None) -> str | None:
        return None if value is None else _check_alias(value)

    @field_validator("stage")
    @classmethod
    def _stage_ok(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if value not in ("Staging", "Production"):
            raise ValueError(f"stage {value!r} is not one of Staging, Production (exact spelling)")
        return value

    @model_validator(mode="after")
    def _one_mode(self) -> PromotionPolicy:
        modes = [m for m in ("alias", "stage", "copy_to") if getattr(self, m) is not None]
        if len(modes) > 1:
            raise ValueError(f"choose one promotion mode, got {' and '.join(modes)}")
        for key in self.tags:
            if key.startswith("model_gate."):
                raise ValueError(f"tag {key!r} uses the reserved prefix model_gate.")
        return self

    @property
    def mode(self) -> Literal["alias", "stage", "copy_to"]:
        if self.stage is not None:
            return "stage"
        if self.copy_to is not None:
            return "copy_to"
        return "alias"

    @property
    def effective_alias(self) -> str:
        if self.copy_to is not None:
            return self.copy_to.alias
        return self.alias or "champion"


class Policy(_Strict):
    version: Literal[1]
    registry: RegistryPolicy = Field(default_factory=RegistryPolicy)
    load: LoadPolicy = Field(default_factory=LoadPolicy)
    integrity: IntegrityPolicy = Field(default_factory=IntegrityPolicy)
    formats: FormatsPolicy = Field(default_factory=FormatsPolicy)
    smoke: SmokePolicy | None = None
    evaluation: EvaluationPolicy | None = None
    thresholds: dict[str, Threshold] = Field(default_factory=dict)
    promotion: PromotionPolicy = Field(default_factory=PromotionPolicy)

    @model_validator(mode="after")
    def _thresholds_match_evaluation(self) -> Policy:
        for name, threshold in self.thresholds.items():
            if threshold.source != "evaluation":
                continue
            if self.evaluation is None:
                raise ValueError(f"thresholds.{name}: source is evaluation but there is no evaluation section")
            if name not in self.evaluation.available_metrics():
                raise ValueError(
                    f"thresholds.{name}: unknown metric for task {self.evaluation.task}; "
                    f"choose from {', '.join(self.evaluation.available_metrics())} or set source: run"
                )
            natural = METRIC_DIRECTIONS[name]
            if threshold.direction != natural:
                raise ValueError(f"thresholds.{name}: direction {threshold.direction} contradicts {name}, "
                                 f"which is better when {natural}")
        if not (self.smoke or self.evaluation or self.thresholds or self.integrity.signature):
            # Fail closed: a policy that checks nothing would promote anything.
            raise ValueError("the policy checks nothing: add smoke, evaluation, thresholds or integrity")
        return self


class LoadedPolicy(BaseModel):
    """A validated policy with where it came from."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    policy: Policy
    path: Path
    sha256: str

    def resolve_path(self, value: str) -> Path:
        """Paths in a policy are relative to the policy file's folder."""
        path = Path(os.path.expanduser(value))
        return path if path.is_absolute() else (self.path.parent / path)


# ---------------------------------------------------------------- loading

@functools.cache
def _policy_loader() -> type:
    """PyYAML's SafeLoader, except that 1e-3 and 1.0e300 are numbers (as in YAML 1.2), not the
    strings YAML 1.1 makes of an exponent without a dot and a sign."""
    import yaml

    class PolicyLoader(yaml.SafeLoader):
        pass

    PolicyLoader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
        list("-+0123456789."),
    )
    return PolicyLoader


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class _UnsetVariable(Exception):
    def __init__(self, loc: tuple, name: str) -> None:
        super().__init__(name)
        self.loc, self.name = loc, name


def _interpolate(value: Any, path: tuple, env: dict[str, str]) -> Any:
    if isinstance(value, str):
        def repl(match: re.Match) -> str:
            name, default = match.group(1), match.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            raise _UnsetVariable(path, name)
        return _ENV_REF.sub(repl, value)
    if isinstance(value, dict):
        return {k: _interpolate(v, (*path, k), env) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, (*path, i), env) for i, v in enumerate(value)]
    return value


def _dotted(path: tuple) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _line_of(node: Any, loc: tuple) -> int | None:
    """The 1-based line of the YAML node at `loc`, or of its nearest existing parent."""
    import yaml

    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if key_node.value == part:
                    line, node = key_node.start_mark.line + 1, value_node
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _error_loc(error: dict) -> tuple:
    # pydantic inserts model/union tags ("function-after[...]") into some locations; drop them.
    return tuple(p for p in error["loc"] if not (isinstance(p, str) and "[" in p and p.endswith("]")))


def load_policy(path: str | Path, env: dict[str, str] | None = None) -> LoadedPolicy:
    """Read, interpolate and validate a policy file. Raises PolicyError with path:line: key: reason."""
    import yaml

    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise PolicyError(f"{path}: policy file not found") from None
    except OSError as error:
        raise PolicyError(f"{path}: cannot read policy file: {error.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise PolicyError(f"{path}: policy file is not UTF-8 text") from None
    try:
        node = yaml.compose(text, Loader=_policy_loader())
        data = yaml.load(text, Loader=_policy_loader())  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise PolicyError(f"{path}{where}: invalid YAML: {problem}") from None
    if data is None:
        raise PolicyError(f"{path}: policy file is empty")
    if not isinstance(data, dict):
        raise PolicyError(f"{path}: a policy is a mapping with `version: 1` at the top, got {type(data).__name__}")
    _reject_duplicate_keys(node, path)
    try:
        data = _interpolate(data, (), dict(os.environ if env is None else env))
    except _UnsetVariable as unset:
        line = _line_of(node, unset.loc)
        raise PolicyError(f"{path}{f':{line}' if line else ''}: {_dotted(unset.loc)}: environment variable "
                          f"{unset.name} is not set (write ${{{unset.name}:-default}} for a default)") from None
    try:
        policy = Policy.model_validate(data)
    except ValidationError as error:
        raise PolicyError(_describe_validation_error(error, node, path)) from None
    loaded = LoadedPolicy(policy=policy, path=path.resolve(), sha256=hashlib.sha256(raw).hexdigest())
    _check_referenced_files(loaded, node, path)
    return loaded


def _referenced_files(policy: Policy) -> list[tuple[tuple, str]]:
    """(key path, value) of every file the policy names that must exist before the gate runs."""
    files: list[tuple[tuple, str]] = []
    if policy.evaluation is not None:
        files.append((("evaluation", "dataset"), policy.evaluation.dataset))
    for index, case in enumerate(policy.smoke.cases if policy.smoke else []):
        if case.input.file is not None:
            files.append((("smoke", "cases", index, "input", "file"), case.input.file))
    signature = policy.integrity.signature
    if signature is not None:
        for key in ("public_keys", "certificate_chain"):
            files += [(("integrity", "signature", key, i), v) for i, v in enumerate(getattr(signature, key))]
    return files


def _check_referenced_files(loaded: LoadedPolicy, node: Any, path: Path) -> None:
    """A missing dataset or key is a policy error now, not a failure after a multi-GB download."""
    for loc, value in _referenced_files(loaded.policy):
        target = loaded.resolve_path(value)
        problem = None if target.is_file() else "is a folder, not a file" if target.is_dir() else "not found"
        if problem is None and loc[:2] == ("integrity", "signature"):
            problem = _key_material_problem(loc[2], target)
        if problem:
            line = _line_of(node, loc)
            raise PolicyError(f"{path}{f':{line}' if line else ''}: {_dotted(loc)}: {target} {problem}")


def _key_material_problem(kind: str, target: Path) -> str | None:
    """A key or certificate file that cannot be used (a private key given as public, not PEM) is a
    policy error at `policy validate`, not a surprise after the download."""
    from gate.errors import UsageError

    try:
        if kind == "public_keys":
            from gate.signing.keys import load_public_key

            load_public_key(target)
        else:
            from gate.signing.certs import load_trusted_certificates

            load_trusted_certificates([target])
    except UsageError as error:
        return str(error).replace(str(target), "").strip(" :") or "is not usable"
    return None


def _describe_validation_error(error: ValidationError, node: Any, path: Path, limit: int = 3) -> str:
    """One line: up to `limit` problems, each as file:line: key.path: reason; unknown keys first (typos)."""
    problems = sorted(error.errors(), key=lambda e: e["type"] != "extra_forbidden")
    parts = []
    for problem in problems[:limit]:
        loc = _error_loc(problem)
        message = problem["msg"].removeprefix("Value error, ")
        # Cross-field checks run on the whole model (no location); their messages start with the key path.
        if not loc and (match := re.match(r"^([A-Za-z_][\w-]*(?:\.[\w-]+)*): (.*)$", message)):
            loc, message = tuple(match.group(1).split(".")), match.group(2)
        line = _line_of(node, loc)
        if problem["type"] == "extra_forbidden":
            message = "unknown key"
        elif problem["type"] == "missing":
            message = "required field is missing"
        elif problem["type"] == "literal_error" and loc == ("version",):
            message = f"unsupported policy version {problem.get('input')!r}; this model-gate reads version 1"
        parts.append(f"{path}{f':{line}' if line else ''}: {_dotted(loc)}: {message}")
    more = f" (and {len(problems) - limit} more)" if len(problems) > limit else ""
    return "; ".join(parts) + more


def _reject_duplicate_keys(node: Any, path: Path) -> None:
    """YAML silently keeps the last of two equal keys; in a policy that hides a mistake."""
    import yaml

    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            if key_node.value in seen:
                raise PolicyError(f"{path}:{key_node.start_mark.line + 1}: duplicate key {key_node.value!r}")
            seen.add(key_node.value)
            _reject_duplicate_keys(value_node, path)
    elif isinstance(node, yaml.SequenceNode):
        for child in node.value:
            _reject_duplicate_keys(child, path)


def policy_json_schema() -> dict:
    schema = Policy.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "model-gate policy"
    return schema
