# model-gate as a container: the GitHub Action's image and a `docker run` tool.
#
# Build arguments (all optional):
#   BASE_IMAGE        the Debian slim base; pin it by digest for reproducible builds
#   WITH_MODELS       true: also install CPU-only torch, transformers and
#                     sentence-transformers (requirements/models.in); false: sklearn/MLflow only
#   TORCH_INDEX_URL   where the CPU torch wheel comes from (never a CUDA build);
#                     set it to '' when TORCH_FIND_LINKS supplies the wheel
#   TORCH_FIND_LINKS  a folder with the torch wheel, mounted into the build
#                     (`-v /opt/wheels:/opt/wheels:ro`), for air-gapped builds
#   PIP_INDEX_URL     a PyPI mirror or proxy
#   EXTRA_CA_CERT     PEM text of a CA to trust (a TLS-intercepting corporate proxy),
#                     for pip during the build and for the gate at run time
#   CA_BUNDLE         path of a CA bundle mounted into the build for pip
#                     (`-v /etc/ssl/certs/ca-certificates.crt:/opt/build-ca/ca.crt:ro`; not
#                     over the image's own bundle, which ca-certificates rewrites while installing)
ARG BASE_IMAGE=docker.io/library/debian:bookworm-slim

# ---------------------------------------------------------------- build stage
FROM ${BASE_IMAGE} AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Debian's Python 3.11 (the version requirements/lock.txt was resolved for).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*

ARG WITH_MODELS=true
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG TORCH_FIND_LINKS=
ARG PIP_INDEX_URL=https://pypi.org/simple
ARG EXTRA_CA_CERT=
ARG CA_BUNDLE=
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_DEFAULT_TIMEOUT=180 PIP_INDEX_URL=${PIP_INDEX_URL}

# Dependencies first, in their own layer: it is rebuilt only when the lock changes.
# lock.txt pins every version (torch as 2.13.0+cpu, which models.in's 2.13.0 admits).
COPY requirements/ /src/requirements/
RUN python3 -m venv /opt/venv \
    && if [ -n "$EXTRA_CA_CERT" ]; then \
           { if [ -s "$CA_BUNDLE" ]; then cat "$CA_BUNDLE"; else cat /etc/ssl/certs/ca-certificates.crt; fi; printf '%s\n' "$EXTRA_CA_CERT"; } > /tmp/pip-ca.pem; \
           export PIP_CERT=/tmp/pip-ca.pem; \
       elif [ -n "$CA_BUNDLE" ]; then export PIP_CERT="$CA_BUNDLE"; fi \
    && set -- -c /src/requirements/lock.txt -r /src/requirements/runtime.in \
    && if [ "$WITH_MODELS" = true ]; then set -- "$@" -r /src/requirements/models.in; fi \
    && if [ -n "$TORCH_FIND_LINKS" ]; then set -- "$@" --find-links "$TORCH_FIND_LINKS"; fi \
    && if [ -n "$TORCH_INDEX_URL" ]; then set -- "$@" --extra-index-url "$TORCH_INDEX_URL"; fi \
    && /opt/venv/bin/pip install "$@" \
    && rm -f /tmp/pip-ca.pem

# The package itself. COPY, not a bind mount: buildah caches a RUN with a bind
# mount without looking at the mounted files, so a warm cache would keep the old
# code. The copies are small; each layer costs a copy of the venv under podman's
# vfs storage, hence one COPY (which puts gate/'s files beside pyproject.toml)
# and one RUN (which puts them back under gate/). setuptools is already in the
# venv (lock.txt): no build isolation, no network.
COPY gate/ pyproject.toml README.md /tmp/src/
RUN mkdir /tmp/pkg && mv /tmp/src/pyproject.toml /tmp/src/README.md /tmp/pkg/ && mv /tmp/src /tmp/pkg/gate \
    && /opt/venv/bin/pip install --no-deps --no-build-isolation /tmp/pkg \
    && /opt/venv/bin/pip uninstall -y pip \
    && rm -rf /tmp/pkg

# ---------------------------------------------------------------- final stage
FROM ${BASE_IMAGE}
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ARG EXTRA_CA_CERT=

# Only the interpreter (no venv module, no compilers) and the CA store for HTTPS registries;
# model-code: the unprivileged user model code runs as (MODEL_GATE_MODEL_USER below).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && if [ -n "$EXTRA_CA_CERT" ]; then \
           printf '%s\n' "$EXTRA_CA_CERT" > /usr/local/share/ca-certificates/extra-ca.crt && update-ca-certificates; \
       fi \
    && useradd --system --uid 65532 --user-group --home-dir /nonexistent --no-create-home \
           --shell /usr/sbin/nologin model-code

# requests and boto3 trust the system store (with EXTRA_CA_CERT) rather than certifi's copy.
ENV REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt \
    AWS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt \
    MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR=false \
    HF_HUB_OFFLINE=1 \
    MODEL_GATE_MODEL_USER=model-code \
    PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

LABEL org.opencontainers.image.title="model-gate" \
      org.opencontainers.image.description="A CI gate that decides whether a machine-learning model may be promoted in a model registry." \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.base.name="docker.io/library/debian:bookworm-slim"

# Runs as root on purpose: the Actions runner mounts its file-command folder
# root-owned, and the entrypoint hands the files it writes in the workspace back
# to the workspace's owner. Model code does not: the gate starts it as model-code. Absolute interpreter path and -I: a workflow's
# PATH or PYTHONPATH cannot change what runs.
# hadolint ignore=DL3002
USER 0:0
WORKDIR /github/workspace
ENTRYPOINT ["/opt/venv/bin/python", "-I", "-u", "/opt/model-gate/entrypoint.py"]

# The venv last: metadata above is cheap to change, and only this layer is large.
COPY entrypoint.py /opt/model-gate/entrypoint.py
COPY --from=build /opt/venv /opt/venv
