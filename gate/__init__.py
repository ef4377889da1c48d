"""model-gate: decide whether a model may be promoted in a model registry.

The gate runs in stages, each in its own module:

    resolve (uris, registry)  ->  download once (registry, storage)
    -> integrity (signing)    ->  weight formats (formats)
    -> load + smoke + evaluate in a child process (sandbox, smoke, metrics)
    -> thresholds (thresholds) -> decision (decision)
    -> promotion + audit tags (promotion) -> reports (report)

`pipeline.run_gate` wires them together; `cli` is the only place that prints
and chooses exit codes. Heavy libraries (mlflow, torch, transformers) are
imported only inside the functions that need them, so `model-gate --help`
stays fast.
"""

__version__ = "0.1.0"
