"""`model-gate check`: the whole gate."""

from __future__ import annotations

import os
from pathlib import Path

import click

from gate.report import RENDERERS


@click.command("check")
@click.option("--policy", "policy_path", required=True, type=click.Path(path_type=Path, dir_okay=False),
              envvar="MODEL_GATE_POLICY", help="The gate policy (YAML).")
@click.option("--model-uri", required=True, envvar="MODEL_GATE_MODEL_URI",
              help="models:/NAME/VERSION, models:/NAME@ALIAS, models:/NAME/latest, runs:/..., s3://..., or a folder.")
@click.option("--dry-run", is_flag=True, help="Run every check but write nothing to the registry.")
@click.option("--report-dir", type=click.Path(path_type=Path, file_okay=False),
              help="Write report.json, report.md and report.junit.xml here.")
@click.option("--tracking-uri",
              help="MLflow tracking server (overrides registry.tracking_uri in the policy, which overrides "
                   "MLFLOW_TRACKING_URI).")
@click.option("--register-as", metavar="NAME",
              help="For a folder, runs:/ or s3:// model: register it under NAME when it passes, then promote it.")
@click.option("--format", "output_format", type=click.Choice(["text", "json", "markdown", "junit"]), default="text",
              show_default=True, help="What to print on standard output.")
@click.option("--workdir", type=click.Path(path_type=Path, file_okay=False),
              help="Keep downloads here (default: a temporary folder, removed afterwards).")
def check(policy_path: Path, model_uri: str, dry_run: bool, report_dir: Path | None, tracking_uri: str | None,
          register_as: str | None, output_format: str, workdir: Path | None) -> int:
    """Run the whole gate on MODEL_URI and promote it if every check passes.

    Exit codes: 0 passed (promoted, or would be in a dry run), 1 rejected,
    2 usage or policy error, 3 registry, storage or network error.
    """
    from gate.errors import ExitCode
    from gate.pipeline import GateOptions, run_gate
    from gate.report import write_reports

    if tracking_uri is not None and not tracking_uri.strip():
        raise click.BadParameter("is empty; leave it out to use the policy's registry.tracking_uri or "
                                 "MLFLOW_TRACKING_URI", param_hint="--tracking-uri")
    if report_dir is not None:
        _check_report_dir(report_dir)

    options = GateOptions(policy_path=policy_path, model_uri=model_uri, dry_run=dry_run,
                          tracking_uri=tracking_uri or None, register_as=register_as, workdir=workdir,
                          keep_workdir=workdir is not None)
    run = run_gate(options, progress=lambda line: click.echo(f"model-gate: {line}", err=True))
    report = run.report()
    # The verdict is decided (and maybe already in the registry): a reader that went away
    # (`| head -1`, a closed stderr) must not turn it into a different exit code.
    _echo_quietly(RENDERERS[output_format](report), err=False)
    if run.error is not None:
        _echo_quietly(f"model-gate: error: {run.error}\n", err=True)
    if report_dir is not None:
        try:
            written = write_reports(report, report_dir)
        except OSError as error:  # checked up front, so only a change during the run gets here
            _echo_quietly(f"model-gate: error: the decision stands ({report['decision']}), but the reports could "
                          f"not be written to {report_dir}: {error.strerror or error}\n", err=True)
            return int(ExitCode.INFRA if run.exit_code == ExitCode.PASSED else run.exit_code)
        _echo_quietly(f"model-gate: reports written to {', '.join(str(p) for p in written.values())}\n", err=True)
    return int(run.exit_code)


def _check_report_dir(report_dir: Path) -> None:
    """Before anything else: a gate that promotes and then cannot write its report would exit
    non-zero with the registry already changed."""
    from gate.errors import UsageError
    from gate.report import report_paths

    try:
        report_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"--report-dir {report_dir}: cannot create it: {error.strerror}") from None
    if not os.access(report_dir, os.W_OK):
        raise UsageError(f"--report-dir {report_dir}: not writable")
    for path in report_paths(report_dir).values():
        for blocker in (path, path.with_suffix(path.suffix + ".tmp")):
            if blocker.is_dir() or (blocker.exists() and not os.access(blocker, os.W_OK)):
                raise UsageError(f"--report-dir {report_dir}: {blocker.name} is "
                                 f"{'a folder' if blocker.is_dir() else 'not writable'}, so the report cannot be written")


def _echo_quietly(text: str, err: bool) -> None:
    try:
        click.echo(text, nl=False, err=err)
    except (BrokenPipeError, OSError, ValueError):
        pass
