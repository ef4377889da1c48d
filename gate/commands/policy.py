"""`model-gate policy validate|schema`."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.group("policy")
def policy() -> None:
    """Validate a policy file or print the policy's JSON Schema."""


@policy.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
def validate(files: tuple[Path, ...]) -> int:
    """Check policy FILES; print the first problem of each with its key path and line."""
    from gate.errors import PolicyError
    from gate.policy import load_policy

    failed = 0
    for file in files:
        try:
            loaded = load_policy(file)
        except PolicyError as error:
            click.echo(f"model-gate: error: {error}", err=True)
            failed += 1
            continue
        click.echo(f"{file}: valid (sha256 {loaded.sha256})")
    return 2 if failed else 0


@policy.command("schema")
def schema() -> None:
    """Print the policy's JSON Schema (for editors: yaml-language-server, check-jsonschema)."""
    from gate.policy import policy_json_schema

    click.echo(json.dumps(policy_json_schema(), indent=2))
