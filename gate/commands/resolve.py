"""`model-gate resolve`."""

from __future__ import annotations

import json

import click


@click.command("resolve")
@click.argument("uri")
@click.option("--tracking-uri", envvar="MLFLOW_TRACKING_URI", show_envvar=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def resolve(uri: str, tracking_uri: str | None, as_json: bool) -> None:
    """Show the concrete name, version, status, source and download location of a model URI."""
    from gate.errors import UsageError
    from gate.registry import Registry
    from gate.uris import is_registry_ref, parse_model_uri

    ref = parse_model_uri(uri)
    if not is_registry_ref(ref):
        raise UsageError(f"{uri!r} is not a registry URI (models:/NAME/VERSION, models:/NAME@ALIAS, "
                         "models:/NAME/latest or models:/NAME/STAGE)")
    registry = Registry(tracking_uri)
    click.echo(f"model-gate: tracking URI: {registry.display_uri}", err=True)
    info = registry.resolve(ref).to_dict()
    info["tracking_uri"] = registry.display_uri
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    for key in ("uri", "name", "version", "status", "stage", "aliases", "source", "run_id", "download_uri"):
        value = info[key]
        click.echo(f"{key + ':':14}{', '.join(value) if isinstance(value, list) else value if value is not None else '-'}")
