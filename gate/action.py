"""The GitHub Action adapter: INPUT_* in, `model-gate check`, runner files out.

entrypoint.py calls main(). It masks secrets before anything is printed,
checks that the runner files can be written and validates inputs itself (the
runner does not enforce `required`), all before the gate runs; runs the CLI
in-process between `::stop-commands::` markers so nothing a model or a
registry says can forge a workflow command, then turns this run's report.json
into outputs, annotations and the step summary. Files it leaves in the
workspace are handed to the workspace's owner, because the container runs as
root and later steps do not.
"""

from __future__ import annotations

import io
import json
import os
import sys
import traceback
from collections.abc import Iterator, Mapping
from contextlib import redirect_stderr
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import unquote, urlsplit

from gate import github
from gate.errors import ExitCode, UsageError

DEFAULT_REPORT_DIR = "model-gate-report"
# Environment variables that hold credentials; masked line by line before anything runs.
SECRET_ENV = (
    "MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_PASSWORD", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
    "DATABRICKS_TOKEN", "MODEL_GATE_SIGNING_KEY",
)
SECRET_INPUTS = ("tracking-token",)
# Interpreter settings a workflow's environment may carry that would change which
# code the gate's child processes (model loading, smoke tests) import.
INTERPRETER_ENV = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE", "PYTHONINSPECT", "PYTHONNOUSERSITE")
OUTPUT_NAMES = ("decision", "model-name", "model-version", "previous-version", "report-json", "report-markdown")
REPORT_FILES = ("report.json", "report.md", "report.junit.xml")  # what `check --report-dir` writes
RUNNER_FILES = ("GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY")


@dataclass(frozen=True)
class ActionInputs:
    policy: str
    model_uri: str
    tracking_uri: str
    dry_run: bool
    report_dir: str
    register_as: str
    public_key: str
    tracking_token: str


def read_inputs(env: Mapping[str, str]) -> ActionInputs:
    """Every input, validated; a UsageError names the first bad one."""
    return ActionInputs(
        policy=github.get_input(env, "policy", required=True),
        model_uri=github.get_input(env, "model-uri", required=True),
        tracking_uri=github.get_input(env, "tracking-uri"),
        dry_run=github.get_bool_input(env, "dry-run", default=False),
        report_dir=github.get_input(env, "report-dir") or DEFAULT_REPORT_DIR,
        register_as=github.get_input(env, "register-as"),
        public_key=github.get_input(env, "public-key"),
        tracking_token=github.get_input(env, "tracking-token"),
    )


def secrets_in(env: Mapping[str, str]) -> list[str]:
    """Every secret value this step could print: credential variables, secret
    inputs, and the password of a tracking URI written as https://user:pass@host."""
    found = [env[name] for name in SECRET_ENV if env.get(name)]
    found += [value for name in SECRET_INPUTS if (value := github.get_input(env, name))]
    for uri in (github.get_input(env, "tracking-uri"), env.get("MLFLOW_TRACKING_URI", "")):
        try:
            password = urlsplit(uri).password if uri else None
        except ValueError:
            password = None
        if password:
            found += [password, unquote(password)]
    return found


def cli_argv(inputs: ActionInputs, report_dir: Path) -> list[str]:
    argv = ["check", "--policy", inputs.policy, "--model-uri", inputs.model_uri, "--report-dir", str(report_dir)]
    if inputs.tracking_uri:
        argv += ["--tracking-uri", inputs.tracking_uri]
    if inputs.dry_run:
        argv.append("--dry-run")
    if inputs.register_as:
        argv += ["--register-as", inputs.register_as]
    return argv


def hardened_env(env: Mapping[str, str], interpreter_bin: str) -> dict[str, str]:
    """The environment for the CLI and its children: no stray interpreter
    settings, and the image's own bin folder and the system's on PATH, whatever
    PATH the workflow set (`/nonexistent` included)."""
    clean = {k: v for k, v in env.items() if k not in INTERPRETER_ENV}
    system = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]
    parts = [interpreter_bin, *[p for p in env.get("PATH", "").split(os.pathsep) if p], *system]
    clean["PATH"] = os.pathsep.join(dict.fromkeys(parts))
    return clean


def inside(path: Path, workspace: Path) -> bool:
    """Whether path (relative to the working folder) is in the workspace, symlinks followed."""
    return path.resolve().is_relative_to(workspace.resolve())


def display_path(path: Path, workspace: Path | None) -> str:
    """A path later steps can open: relative to the workspace when inside it
    (the container's /github/workspace is another path on the runner)."""
    if workspace is not None and inside(path, workspace):
        return str(path.resolve().relative_to(workspace.resolve()))
    return str(path)


def check_public_key(value: str) -> None:
    """The public-key input is the path of a PEM file. Checked here whether or
    not the policy names ${MODEL_GATE_PUBLIC_KEY}: a key that was meant to be
    trusted and is not there is a mistake either way."""
    if not value:
        return
    if "-----BEGIN" in value:
        raise UsageError("input 'public-key' is the path of a PEM file in the workspace, not the key itself: "
                         "commit the key (e.g. keys/model-signing.pub.pem) and pass its path")
    path = Path(value)
    if not path.exists():
        raise UsageError(f"input 'public-key': {value} not found")
    if not path.is_file():
        raise UsageError(f"input 'public-key': {value} is not a file")


def outside_workspace_warnings(inputs: ActionInputs, workspace: Path | None) -> list[str]:
    """One warning per path input outside the workspace. Used as given, not
    refused: a self-hosted runner or a local `docker run` may mount other
    folders on purpose; but later steps only share the workspace with us."""
    if workspace is None:
        return []
    warnings = []
    for name, value in (("policy", inputs.policy), ("report-dir", inputs.report_dir),
                        ("public-key", inputs.public_key)):
        if value and not inside(Path(value), workspace):
            warning = f"input '{name}': {value} is outside the workspace {workspace}; used as given"
            if name == "report-dir":
                warning += ", and the report-json and report-markdown outputs are absolute paths"
            warnings.append(warning)
    return warnings


def prepare_report_dir(report_dir: Path) -> Path:
    """Create the report folder and remove the reports an earlier run left there,
    so that only this run's report can become outputs, annotations and summary.

    Returns the outermost folder this created (or report_dir itself), for
    hand_to_owner. Every problem is a UsageError naming the input.
    """
    if report_dir.exists() and not report_dir.is_dir():
        raise UsageError(f"input 'report-dir': {report_dir} is a file, not a folder")
    created_root = report_dir if report_dir.exists() else first_missing_ancestor(report_dir)
    try:
        report_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"input 'report-dir': cannot create {report_dir}: {error.strerror or error}") from None
    if not os.access(report_dir, os.W_OK):
        raise UsageError(f"input 'report-dir': {report_dir} is not writable")
    for name in REPORT_FILES:
        stale = report_dir / name
        try:
            stale.unlink(missing_ok=True)
        except OSError as error:
            raise UsageError(f"input 'report-dir': cannot remove the earlier {stale}: "
                             f"{error.strerror or error}") from None
    return created_root


def outputs_from_report(report: Mapping[str, Any], json_path: str, markdown_path: str) -> dict[str, str]:
    model = report.get("model") or {}
    return {
        "decision": str(report.get("decision") or "error"),
        "model-name": str(model.get("name") or ""),
        "model-version": str(model.get("version") or ""),
        "previous-version": str(report.get("previous_version") or ""),
        "report-json": json_path,
        "report-markdown": markdown_path,
    }


def annotations_from_report(report: Mapping[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(level, title, message) for each failed, errored or warned check."""
    model = report.get("model") or {}
    subject = model.get("name") or model.get("uri") or "model"
    if model.get("version"):
        subject = f"{subject} v{model['version']}"
    for check in report.get("checks") or []:
        status = check.get("status")
        level = "error" if status in ("failed", "error") else "warning" if status == "warned" else None
        if level:
            yield level, f"model-gate {check.get('name', '?')}: {subject}", str(check.get("message", ""))


class _Tee(io.TextIOBase):
    """A stderr that still prints everything and remembers the CLI's error line."""

    def __init__(self, target: TextIO) -> None:
        self.target = target
        self.last_error = ""

    def write(self, text: str) -> int:
        for line in text.splitlines():
            if line.startswith("model-gate: error: "):
                self.last_error = line.removeprefix("model-gate: error: ")
        self.target.write(text)
        return len(text)

    def flush(self) -> None:
        self.target.flush()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.target, "encoding", "utf-8")

    def isatty(self) -> bool:
        return False


def run_cli(argv: list[str], out: TextIO) -> tuple[int, str]:
    """`model-gate ARGV` in-process; returns (exit code, its one-line error)."""
    from gate.cli import main as cli_main

    tee = _Tee(sys.stderr)
    try:
        with redirect_stderr(tee):
            code = cli_main(argv)
    except Exception as error:  # a bug, not a verdict on the model: never report it as a rejection
        traceback.print_exc(file=out)
        return int(ExitCode.INFRA), f"model-gate crashed: {type(error).__name__}: {error}"
    return code, tee.last_error


def first_missing_ancestor(path: Path) -> Path:
    """The outermost folder that mkdir(parents=True) on path would create."""
    path = path.absolute()
    while not path.parent.exists():
        path = path.parent
    return path


def hand_to_owner(root: Path, workspace: Path | None) -> None:
    """chown what the container (root) wrote under root to the workspace's owner."""
    if workspace is None or os.geteuid() != 0 or not root.exists():
        return
    if not inside(root, workspace):
        return  # never touch files outside the workspace
    owner = workspace.stat()
    if (owner.st_uid, owner.st_gid) == (0, 0):
        return
    os.lchown(root, owner.st_uid, owner.st_gid)
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            os.lchown(os.path.join(folder, name), owner.st_uid, owner.st_gid)


@dataclass(frozen=True)
class RunReport:
    """What this run's `check` left in the report folder ('' and {} for what it did not write)."""

    data: dict[str, Any]
    json_path: str
    markdown_path: str
    markdown: str
    error: str


def read_report(report_dir: Path, workspace: Path | None) -> RunReport:
    """The report files in report_dir. prepare_report_dir removed any earlier
    run's, so whatever is here was written by this run."""
    json_file, markdown_file = report_dir / "report.json", report_dir / "report.md"
    data: dict[str, Any] = {}
    markdown = error = ""
    try:
        if json_file.is_file():
            data = json.loads(json_file.read_text(encoding="utf-8"))
        if markdown_file.is_file():
            markdown = markdown_file.read_text(encoding="utf-8")
    except (OSError, ValueError) as problem:
        error = f"unreadable report in {report_dir}: {problem}"
    return RunReport(
        data=data if isinstance(data, dict) else {},
        json_path=display_path(json_file, workspace) if json_file.is_file() else "",
        markdown_path=display_path(markdown_file, workspace) if markdown_file.is_file() else "",
        markdown=markdown, error=error,
    )


class _Log:
    """The step's stdout: workflow commands and plain lines, flushed at once."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def emit(self, *lines: str) -> None:
        for line in lines:
            self.out.write(line + "\n")
        self.out.flush()

    def error(self, title: str, message: str) -> None:
        self.emit(github.workflow_command("error", message, title=title))


def main(env: Mapping[str, str] | None = None, out: TextIO | None = None) -> int:
    env = os.environ if env is None else env
    log = _Log(sys.stdout if out is None else out)
    try:
        return _run(env, log)
    except github.RunnerFileError as error:
        log.error("model-gate: runner file", str(error))
        return int(error.exit_code)
    except Exception as error:  # a bug in the adapter: never reported as a rejection
        traceback.print_exc(file=sys.stderr)
        log.error("model-gate: internal error", f"the Action adapter crashed: {type(error).__name__}: {error}")
        return int(ExitCode.INFRA)


def _run(env: Mapping[str, str], log: _Log) -> int:
    # Masks first: nothing below may print a secret before the runner knows it.
    for secret in secrets_in(env):
        log.emit(*github.mask_commands(secret))

    # Runner files next: a gate that promotes and then cannot say so would leave
    # later steps without a decision. Unset (a local run): nothing to write.
    runner = {variable: env[variable] for variable in RUNNER_FILES if env.get(variable)}
    for variable, path in runner.items():
        github.append(path, "", variable=variable)

    workspace = Path(env["GITHUB_WORKSPACE"]) if env.get("GITHUB_WORKSPACE") else None
    try:
        inputs = read_inputs(env)
        check_public_key(inputs.public_key)
        report_dir = Path(inputs.report_dir)
        created_root = prepare_report_dir(report_dir)
    except UsageError as error:
        log.error("model-gate: invalid input", str(error))
        _set_outputs(runner, {"decision": "error"})
        return int(error.exit_code)

    try:
        for warning in outside_workspace_warnings(inputs, workspace):
            log.emit(github.workflow_command("warning", warning, title="model-gate: outside the workspace"))
        code, error_line = _gate(env, inputs, report_dir, log)
        _hand_over(read_report(report_dir, workspace), code, error_line, runner, log)
        return code
    finally:
        try:
            hand_to_owner(created_root, workspace)
        except OSError as error:
            log.emit(github.workflow_command("warning", f"could not hand {created_root} to the workspace's owner: "
                                             f"{error.strerror or error}", title="model-gate"))


def _set_outputs(runner: Mapping[str, str], values: Mapping[str, str]) -> None:
    if "GITHUB_OUTPUT" in runner:
        github.append(runner["GITHUB_OUTPUT"], "".join(github.format_output(k, v) for k, v in values.items()),
                      variable="GITHUB_OUTPUT")


def _hand_over(report: RunReport, code: int, error_line: str, runner: Mapping[str, str], log: _Log) -> None:
    """This run's verdict as annotations, outputs and step summary."""
    outputs = outputs_from_report(report.data, report.json_path, report.markdown_path)
    error_line = error_line or report.error
    annotations = list(annotations_from_report(report.data))
    if code not in (0, 1) or not annotations and code != 0:
        message = error_line or f"model-gate check exited with {code}"
        annotations.insert(0, ("error", f"model-gate: {outputs['decision']}", message))
    log.emit(*github.annotation_commands(annotations))
    summary = report.markdown or f"## model-gate: {outputs['decision']}\n\n{error_line or f'exit code {code}'}\n"
    try:
        _set_outputs(runner, outputs)
        if "GITHUB_STEP_SUMMARY" in runner:
            github.append(runner["GITHUB_STEP_SUMMARY"], github.truncate_summary(summary) + "\n",
                          variable="GITHUB_STEP_SUMMARY")
    except github.RunnerFileError as error:
        # The verdict may already be in the registry: say what it was.
        raise github.RunnerFileError(f"{error}; the gate's decision was {outputs['decision']} (exit {code})") from None


def _gate(env: Mapping[str, str], inputs: ActionInputs, report_dir: Path, log: _Log) -> tuple[int, str]:
    """Set the gate's environment and run `model-gate check`; (exit code, its error line)."""
    if env is os.environ:
        hardened = hardened_env(os.environ, str(Path(sys.executable).parent))
        os.environ.clear()
        os.environ.update(hardened)
    if inputs.tracking_token:
        os.environ["MLFLOW_TRACKING_TOKEN"] = inputs.tracking_token
    if inputs.tracking_uri:
        # Also as the environment, which every MLflow client in the run (model
        # downloads resolve models:/ through the default registry URI) picks up.
        os.environ["MLFLOW_TRACKING_URI"] = inputs.tracking_uri
    if inputs.public_key:
        # The policy names it as ${MODEL_GATE_PUBLIC_KEY}; absolute, because policy paths
        # are relative to the policy file, while the input is relative to the workspace.
        os.environ["MODEL_GATE_PUBLIC_KEY"] = str(Path(inputs.public_key).absolute())

    # Everything the CLI prints is plain log text, not commands: stop-commands
    # makes the runner ignore `::` lines until the random token comes back.
    token = github.new_token()
    log.emit(f"::group::model-gate check {inputs.model_uri}", f"::stop-commands::{token}")
    try:
        return run_cli(cli_argv(inputs, report_dir), log.out)
    finally:
        sys.stderr.flush()
        log.emit(f"::{token}::", "::endgroup::")
