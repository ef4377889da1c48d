#!/usr/bin/env bash
# Quick start: install model-gate into .venv, then run the gate on real models in a local registry.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/bootstrap
exec .venv/bin/python examples/quickstart/quickstart.py "$@"
