"""`model-gate convert SRC`: pickle checkpoints to verified safetensors."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command("convert")
@click.argument("src", type=click.Path(path_type=Path))
@click.option("--out", "out", type=click.Path(path_type=Path),
              help="Output folder (default: next to a file, or SRC-safetensors for a folder).")
@click.option("--max-shard-size", default="5GB", show_default=True,
              help="Largest output shard, e.g. 5GB, 500MB, 2GiB.")
@click.option("--policy", "policy_file", type=click.Path(path_type=Path),
              help="Scan the inputs under this policy's formats: section (default: strict).")
@click.option("--no-model-check", is_flag=True,
              help="Skip loading both folders with transformers to compare outputs.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def convert(src: Path, out: Path | None, max_shard_size: str, policy_file: Path | None, no_model_check: bool,
            as_json: bool) -> int:
    """Convert a .bin/.pt/.pth/.ckpt file or a Hugging Face folder to safetensors.

    The inputs are scanned first; they are loaded only with torch.load(weights_only=True)
    in a child process. Every tensor is reloaded and compared bit for bit afterwards.
    A folder with a symlink leading outside it (or a symlinked folder, a dangling link,
    a special file) is refused before anything is written.
    """
    from gate.formats.convert import convert as run_convert
    from gate.formats.convert import parse_size

    policy = None
    if policy_file is not None:
        from gate.policy import load_policy

        policy = load_policy(policy_file).policy.formats
    result = run_convert(src, out, max_shard_size=parse_size(max_shard_size), policy=policy,
                         compare_model=not no_model_check)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return 0
    click.echo(f"wrote {len(result['files'])} safetensors file(s) to {result['out_dir']}: "
               f"{result['tensors']} tensors, {result['bytes']} bytes")
    click.echo(f"verified {result['compared']} tensors bit for bit after reloading")
    for alias, kept in sorted(result["aliases"].items()):
        click.echo(f"tied: {alias} -> {kept} (stored once, restored on load)")
    if result["cloned_views"]:
        click.echo(f"views copied to their own storage: {', '.join(result['cloned_views'])}")
    for name in result["skipped"]:
        click.echo(f"not converted nor copied (pickle): {name}")
    check = result.get("model_check")
    if check:
        if check.get("model_outputs_identical"):
            click.echo(f"transformers outputs identical on a fixed input (shape {check['output_shape']})")
        else:
            click.echo(f"model outputs not compared: {check.get('skipped')}")
    return 0
