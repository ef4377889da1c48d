"""`model-gate rollback`."""

from __future__ import annotations

import json

import click


@click.command("rollback")
@click.option("--model", "name", required=True, help="Registered model name.")
@click.option("--alias", default="champion", show_default=True)
@click.option("--tracking-uri", envvar="MLFLOW_TRACKING_URI", show_envvar=True)
@click.option("--json", "as_json", is_flag=True)
def rollback(name: str, alias: str, tracking_uri: str | None, as_json: bool) -> None:
    """Move ALIAS back to the previous champion recorded by the last promotion."""
    from gate.promotion import rollback as do_rollback
    from gate.registry import Registry

    result = do_rollback(Registry(tracking_uri), name, alias)
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        click.echo(f"{name}@{alias}: version {result['from_version']} -> {result['to_version']}")
