"""The `model-gate` command line.

Subcommands live in gate/commands/, one module each, and are imported only
when invoked, so `model-gate --help` never imports mlflow, torch or
transformers. This is the only module that turns errors into exit codes.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from typing import NoReturn

import click

from gate import __version__
from gate.errors import ExitCode, GateError

# command name -> (module under gate.commands, attribute, one-line help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "check": ("check", "check", "Run the whole gate on a model and promote it if it passes."),
    "policy": ("policy", "policy", "Validate a policy file or print its JSON Schema."),
    "register": ("register", "register", "Register a model version and wait until it is READY."),
    "resolve": ("resolve", "resolve", "Show the exact registry version a model URI points to."),
    "rollback": ("rollback", "rollback", "Move the alias back to the previous champion."),
    "digest": ("digest", "digest", "Check a folder holds exactly the files the gate promoted."),
    "sign": ("signing", "sign", "Sign a model folder (OpenSSF Model Signing) or a file (detached)."),
    "verify": ("signing", "verify", "Verify a model's signature."),
    "keygen": ("signing", "keygen", "Write a new EC signing key pair."),
    "scan": ("scan", "scan", "Detect weight formats, validate safetensors, scan pickles."),
    "convert": ("convert", "convert", "Convert pickle checkpoints to safetensors."),
    "upload": ("storage", "upload", "Upload a model folder to s3://BUCKET/PREFIX/NAME/VERSION/."),
    "download": ("storage", "download", "Download and verify a model version from S3."),
    "presign": ("storage", "presign", "Print a presigned GET URL for a model file in S3."),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module_name, attr, _ = COMMANDS[name]
        module = importlib.import_module(f"gate.commands.{module_name}")
        return getattr(module, attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Help text comes from the table above, so listing commands imports nothing.
        rows = [(name, help_) for name, (_, _, help_) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="model-gate")
@click.option("-v", "--verbose", count=True, help="More logging; -vv also shows tracebacks.")
@click.pass_context
def cli(ctx: click.Context, verbose: int) -> None:
    """Decide whether a machine-learning model may be promoted.

    Exit codes: 0 passed, 1 rejected by the gate, 2 usage or policy error,
    3 infrastructure error (registry, storage or network).
    """
    ctx.ensure_object(dict)
    ctx.obj["verbose"] = verbose
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for handler in logging.getLogger().handlers:
        if _scrub_log_record not in handler.filters:  # main() can run many times in one process
            handler.addFilter(_scrub_log_record)
    logging.getLogger("gate").setLevel(logging.INFO if verbose == 0 else level)
    # Libraries' own chatter (urllib3's "Retrying ..." before a connection error the gate reports in
    # one line, scikit-learn's UndefinedMetricWarning, deprecations) is for -v, not for every run.
    logging.captureWarnings(True)
    for noisy in ("urllib3", "py.warnings"):
        logging.getLogger(noisy).setLevel(logging.ERROR if verbose == 0 else level)


def _scrub_log_record(record: logging.LogRecord) -> bool:
    """Library log lines (urllib3 retries, MLflow) name URLs with tokens in them: mask first."""
    from gate.uris import scrub_secrets

    record.msg, record.args = scrub_secrets(record.getMessage(), limit=20_000), None
    return True


class Terminated(KeyboardInterrupt):
    """SIGTERM (a cancelled CI job): unwind like Ctrl-C, so model processes and the promotion lock are released."""


def _terminate_like_interrupt() -> None:
    import signal
    import threading

    def handler(signum: int, frame: object) -> None:
        raise Terminated()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (tests call this in-process)."""
    verbose = argv is not None and any(a in ("-vv", "-vvv") for a in argv) or "-vv" in sys.argv
    _terminate_like_interrupt()
    try:
        result = cli.main(args=argv, prog_name="model-gate", standalone_mode=False)
    except GateError as error:
        if verbose:
            _print_traceback()
        click.echo(f"model-gate: error: {error}", err=True)
        return int(error.exit_code)
    except click.exceptions.Abort as abort:  # click turns KeyboardInterrupt into Abort
        click.echo("model-gate: interrupted", err=True)
        return 143 if isinstance(abort.__cause__, Terminated) else 130
    except click.ClickException as error:
        error.show()
        return int(ExitCode.USAGE)
    except click.exceptions.Exit as exit_:
        return int(exit_.exit_code)
    except KeyboardInterrupt as interrupt:
        click.echo("model-gate: interrupted", err=True)
        return 143 if isinstance(interrupt, Terminated) else 130
    except Exception as error:  # a bug or an unexpected library error: one line, no secrets
        if verbose:
            _print_traceback()
        from gate.uris import scrub_secrets

        detail = scrub_secrets(str(error).strip().splitlines()[0] if str(error).strip() else "")
        click.echo(f"model-gate: internal error: {type(error).__name__}: {detail} "
                   "(run with -vv for the traceback)", err=True)
        return int(ExitCode.INFRA)
    return int(result) if isinstance(result, int) else 0


def _print_traceback() -> None:
    """-vv: the traceback on stderr, masked; the exit code stays the error's own."""
    import traceback

    from gate.uris import scrub_secrets

    click.echo(scrub_secrets(traceback.format_exc(), limit=100_000).rstrip(), err=True)


def run() -> None:
    """The console entry point."""
    exit_without_teardown(main())


def exit_without_teardown(code: int) -> NoReturn:
    """Flush and exit, skipping the interpreter's teardown.

    Every file the gate writes is closed, its model processes stopped and its temporary
    folders removed before main() returns; what is left is unloading mlflow, pandas and
    sklearn module by module, which takes most of a second on every run.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed or broken pipe: the exit code still stands
            pass
    logging.shutdown()
    os._exit(code)


if __name__ == "__main__":
    run()
