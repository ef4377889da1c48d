"""Read a model's `MLmodel` file, the MLflow descriptor that says how the model is loaded.

Checked before the model process is asked to load anything, so a broken descriptor is a failed
check naming the file (not a TypeError from deep inside MLflow), and registration refuses it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

MAX_BYTES = 1 << 20  # MLflow writes a few hundred bytes; more is not a descriptor
MAX_DEPTH = 64  # MLflow nests a handful of levels; thousands make PyYAML crawl, then recurse too deep


def _shape_problem(events: Any) -> str | None:
    """Looked at event by event, before anything is built from the YAML."""
    import yaml

    depth = 0
    for event in events:
        if isinstance(event, yaml.AliasEvent):
            return "uses YAML aliases (*name), which MLflow does not write"
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                return f"nested more than {MAX_DEPTH} levels deep, which MLflow does not write"
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1
    return None


def read_mlmodel(model_dir: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(the parsed MLmodel, None), or (None, what is wrong with it, naming the file)."""
    import yaml

    path = model_dir / "MLmodel"
    if not path.is_file():
        return None, f"{model_dir.name}: not an MLflow model (no MLmodel file)"
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except OSError as error:
        return None, f"{path.name}: cannot be read ({error.strerror})"
    if len(raw) > MAX_BYTES:
        return None, f"{path.name}: larger than {MAX_BYTES} bytes, not an MLflow model descriptor"
    try:
        text = raw.decode("utf-8")
        # MLflow never writes anchors and aliases; refusing them refuses "billion laughs" bombs,
        # which stay small as parsed data and explode when a value is turned into text.
        if problem := _shape_problem(yaml.parse(text, Loader=yaml.SafeLoader)):
            return None, f"{path.name}: {problem}"
        meta = yaml.safe_load(text)
    except UnicodeDecodeError as error:
        return None, f"{path.name}: not UTF-8 text (byte {error.start})"
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        return None, f"{path.name}: not valid YAML{where}"
    except (ValueError, RecursionError) as error:  # a date like 2026-13-45, nesting thousands deep
        return None, f"{path.name}: not valid YAML ({type(error).__name__}: {str(error)[:100]})"
    if not isinstance(meta, dict):
        return None, f"{path.name}: must be a YAML mapping, got {type(meta).__name__}"
    flavors = meta.get("flavors")
    if not isinstance(flavors, dict) or not flavors:
        return None, f"{path.name}: has no 'flavors' mapping, so MLflow cannot load it"
    return meta, None
