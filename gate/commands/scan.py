"""`model-gate scan PATH`: what each file is, whether it is valid, and what its pickles import."""

from __future__ import annotations

import json
from pathlib import Path

import click

from gate.errors import RejectedError, UsageError


@click.command("scan")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--strict/--no-strict", default=None,
              help="Unknown pickle globals are unsafe (default) or only reported.")
@click.option("--policy", "policy_file", type=click.Path(path_type=Path),
              help="Take the formats: section (allowed, pickle, allow_globals, ...) from this policy file.")
@click.option("--allow-global", "allow_globals", multiple=True, metavar="PATTERN",
              help="Also allow pickle globals matching this module.name pattern, e.g. 'sklearn.*'. Repeatable.")
def scan(path: Path, as_json: bool, strict: bool | None, policy_file: Path | None,
         allow_globals: tuple[str, ...]) -> int:
    """Detect formats, validate safetensors and scan pickles under PATH (a file or folder).

    Exit 0 when everything is safe and valid, 1 when anything is unsafe or invalid,
    2 on usage errors. Nothing is loaded or executed.
    """
    from pydantic import ValidationError

    from gate.formats.gate_check import run_scan
    from gate.formats.policy import FormatsPolicy

    if not path.exists() and not path.is_symlink():
        raise UsageError(f"{path}: no such file or folder")
    policy = FormatsPolicy()
    if policy_file is not None:
        from gate.policy import load_policy

        policy = load_policy(policy_file).policy.formats
    overrides: dict = {}
    if strict is not None:
        overrides["strict"] = strict
    if allow_globals:
        overrides["allow_globals"] = [*policy.allow_globals, *allow_globals]
    try:
        policy = FormatsPolicy.model_validate({**policy.model_dump(), **overrides})
    except ValidationError as error:
        raise UsageError(f"--allow-global: {error.errors()[0]['msg'].removeprefix('Value error, ')}") from None
    verdicts = run_scan(policy, path)
    bad = [v for v in verdicts if not v.ok]
    if as_json:
        click.echo(json.dumps({
            "path": str(path), "ok": not bad, "strict": policy.strict, "pickle": policy.pickle,
            "files": [{**v.report.to_dict(), "status": v.status, "problems": v.problems, "notes": v.notes}
                      for v in verdicts],
        }, indent=2))
    else:
        _print_table(verdicts)
    if bad:
        if as_json:
            return 1
        raise RejectedError(f"{len(bad)} of {len(verdicts)} files are unsafe or invalid")
    return 0


def _print_table(verdicts: list) -> None:
    width = max([len(v.report.path) for v in verdicts] + [4])
    click.echo(f"{'FILE':<{width}}  {'FORMAT':<16} {'STATUS':<8} SIZE")
    for v in verdicts:
        r = v.report
        click.echo(f"{r.path:<{width}}  {r.format:<16} {v.status:<8} {r.size}")
        for problem in v.problems:
            click.echo(f"    ✗ {problem.removeprefix(r.path + ': ')}")
        for note in v.notes:
            click.echo(f"    ! {note.removeprefix(r.path + ': ')}")
