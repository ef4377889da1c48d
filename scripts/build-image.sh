#!/usr/bin/env bash
# Build the model-gate image with podman on a machine without a Docker engine.
#
#   scripts/build-image.sh            # tag localhost/model-gate:dev
#   IMAGE=model-gate:test WITH_MODELS=false scripts/build-image.sh
#
# Idempotent and cached: podman keeps the layers (dependencies are one layer
# keyed on requirements/), so a rebuild after a code change reinstalls only the
# package. On a fresh machine container-setup.sh installs and prepares podman.
# Environment:
#   IMAGE          tag to build (default localhost/model-gate:dev)
#   WITH_MODELS    true (default): CPU torch, transformers, sentence-transformers
#   WHEELS_DIR     folder holding the CPU torch wheel (default /opt/wheels);
#                  when it has one, the build uses it instead of the torch index
#   CA_BUNDLE_HOST the host's CA bundle, mounted so pip trusts an intercepting proxy
#   PIP_INDEX_URL  a PyPI mirror (optional)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
IMAGE=${IMAGE:-localhost/model-gate:dev}
WITH_MODELS=${WITH_MODELS:-true}
WHEELS_DIR=${WHEELS_DIR:-/opt/wheels}
CA_BUNDLE_HOST=${CA_BUNDLE_HOST:-/etc/ssl/certs/ca-certificates.crt}

while IFS='=' read -r key value; do
    export "$key=$value"
done < <(bash "$ROOT/scripts/container-setup.sh" --print-env)

# The build stage gets a tag of its own so that pruning dangling images (the
# ones this build replaced) keeps its layers, the dependency layer above all.
BUILD_STAGE_TAG=${BUILD_STAGE_TAG:-localhost/model-gate-build-stage:cache}
args=(--isolation chroot --network host --layers --format docker -f "$ROOT/Dockerfile"
      --build-arg "WITH_MODELS=$WITH_MODELS")
if [[ -s $CA_BUNDLE_HOST ]]; then
    # Beside the image's own bundle, not over it: ca-certificates rewrites that file while installing.
    args+=(-v "$CA_BUNDLE_HOST:/opt/build-ca/ca.crt:ro" --build-arg CA_BUNDLE=/opt/build-ca/ca.crt)
fi
if compgen -G "$WHEELS_DIR/torch-*.whl" >/dev/null; then
    args+=(-v "$WHEELS_DIR:/opt/wheels:ro" --build-arg TORCH_FIND_LINKS=/opt/wheels --build-arg TORCH_INDEX_URL=)
fi
if [[ -n ${PIP_INDEX_URL:-} ]]; then
    args+=(--build-arg "PIP_INDEX_URL=$PIP_INDEX_URL")
fi

start=$(date +%s)
podman build "${args[@]}" --target build -t "$BUILD_STAGE_TAG" "$ROOT" >&2
podman build "${args[@]}" -t "$IMAGE" "$ROOT" >&2
# Drop what the new build replaced (untagged, childless); tagged chains stay cached.
# Housekeeping only: an old image still used by a running container is not a failed build.
podman image prune -f >/dev/null || echo "build-image: could not prune replaced images; continuing" >&2
size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
echo "build-image: $IMAGE built in $(($(date +%s) - start)) s, $((size / 1000000)) MB" >&2
