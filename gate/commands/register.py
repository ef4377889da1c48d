"""`model-gate register`."""

from __future__ import annotations

import json

import click


@click.command("register")
@click.option("--name", required=True, help="Registered model name (created if it does not exist).")
@click.option("--source", required=True, help="runs:/RUN_ID/PATH, models:/m-<id> or a local MLflow model folder.")
@click.option("--tracking-uri", envvar="MLFLOW_TRACKING_URI", show_envvar=True)
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0, min_open=True), default=300, show_default=True,
              help="Seconds to wait for the version to become READY.")
@click.option("--json", "as_json", is_flag=True, help="Print the version as JSON.")
def register(name: str, source: str, tracking_uri: str | None, timeout_s: float, as_json: bool) -> None:
    """Register a model version from SOURCE and wait until it is READY; prints the version."""
    from gate.registration import register_source
    from gate.registry import Registry

    registry = Registry(tracking_uri)
    info = register_source(registry, name, source, timeout_s, 1.0)
    click.echo(json.dumps(info.to_dict(), indent=2) if as_json else info.version)
