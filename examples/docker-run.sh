#!/usr/bin/env bash
# Run the gate locally exactly as the Action runs it: the current folder is the
# workspace, inputs are INPUT_* variables (the underscore spelling works here),
# secrets are passed by name from your environment, never on the command line.
#
#   MLFLOW_TRACKING_URI=http://127.0.0.1:5000 examples/docker-run.sh policies/iris.yaml models:/iris/3
#
# Use `podman` instead of `docker` where there is no Docker engine. The report
# lands in ./model-gate-report/, owned by you, and outputs in ./model-gate-outputs.
set -euo pipefail

policy=${1:?usage: $0 POLICY MODEL_URI [DRY_RUN]}
model_uri=${2:?usage: $0 POLICY MODEL_URI [DRY_RUN]}
dry_run=${3:-true}
image=${IMAGE:-localhost/model-gate:dev}
engine=${ENGINE:-docker}

: >model-gate-outputs
# --network host: a tracking server on this machine's loopback is reachable.
exec "$engine" run --rm --network host \
    --workdir /github/workspace -v "$PWD:/github/workspace" \
    -e GITHUB_WORKSPACE=/github/workspace \
    -e GITHUB_OUTPUT=/github/workspace/model-gate-outputs \
    -e INPUT_POLICY="$policy" -e INPUT_MODEL_URI="$model_uri" -e INPUT_DRY_RUN="$dry_run" \
    -e MLFLOW_TRACKING_URI -e MLFLOW_TRACKING_TOKEN \
    -e AWS_ACCESS_KEY_ID -e AWS_SECRET_ACCESS_KEY -e AWS_SESSION_TOKEN -e AWS_DEFAULT_REGION -e AWS_ENDPOINT_URL \
    "$image"
