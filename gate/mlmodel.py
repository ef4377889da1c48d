"""Read a model's `MLmodel` file, the MLflow descriptor that says how the model is loaded.

Checked before the model process is asked to load anything, so a broken descriptor is a failed
check naming the file (not a TypeError from deep inside MLflow), and registration refuses it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

MAX_BYTES = 1 << 20  # MLflow writes a few hundred bytes; more is not a descriptor


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
        meta = yaml.safe_load(raw.decode("utf-8"))
    except UnicodeDecodeError as error:
        return None, f"{path.name}: not UTF-8 text (byte {error.start})"
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        return None, f"{path.name}: not valid YAML{where}"
    if not isinstance(meta, dict):
        return None, f"{path.name}: must be a YAML mapping, got {type(meta).__name__}"
    flavors = meta.get("flavors")
    if not isinstance(flavors, dict) or not flavors:
        return None, f"{path.name}: has no 'flavors' mapping, so MLflow cannot load it"
    return meta, None
