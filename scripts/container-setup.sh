#!/usr/bin/env bash
# Make podman usable on a machine without a Docker engine or registry access,
# idempotently: every step is skipped when its result is already there, so a
# second run costs seconds, and a fresh machine gets everything.
#
#   1. podman, buildah, runc and debootstrap from Debian's packages;
#   2. a containers.conf (runc, no default ulimits: setrlimit fails in this
#      sandbox) and a storage.conf (vfs driver: no overlay mounts here);
#   3. the Dockerfile's base image, built with debootstrap and imported under
#      the exact name its FROM uses, because no container registry is reachable.
#
# Prints the environment the callers need (CONTAINERS_CONF=..., one per line)
# when given --print-env; scripts/build-image.sh and tests/action use it.
set -euo pipefail

STATE_DIR=${MODEL_GATE_PODMAN_DIR:-/var/cache/model-gate/podman}
BASE_IMAGE=${BASE_IMAGE:-docker.io/library/debian:bookworm-slim}
SUITE=${DEBIAN_SUITE:-bookworm}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}

log() { echo "container-setup: $*" >&2; }

need_packages=()
for tool in podman buildah runc debootstrap; do
    command -v "$tool" >/dev/null 2>&1 || need_packages+=("$tool")
done
if ((${#need_packages[@]})); then
    log "installing ${need_packages[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_packages[@]}" >/dev/null
fi

mkdir -p "$STATE_DIR"
export CONTAINERS_CONF="$STATE_DIR/containers.conf"
export CONTAINERS_STORAGE_CONF="$STATE_DIR/storage.conf"
cat >"$CONTAINERS_CONF.tmp" <<'EOF'
[containers]
# runc (and crun) fail on setrlimit here when podman applies its default ulimits.
default_ulimits = []

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
mv "$CONTAINERS_CONF.tmp" "$CONTAINERS_CONF"
cat >"$CONTAINERS_STORAGE_CONF.tmp" <<EOF
[storage]
# vfs copies layers instead of mounting overlays, which this sandbox does not allow.
driver = "vfs"
runroot = "${STATE_DIR}/run"
graphroot = "${STATE_DIR}/storage"
EOF
mv "$CONTAINERS_STORAGE_CONF.tmp" "$CONTAINERS_STORAGE_CONF"

# Bumped when the way the base is built changes, so an older import on this machine is rebuilt.
BASE_REVISION=2
if podman image exists "$BASE_IMAGE" \
   && [[ $(podman image inspect --format '{{index .Config.Labels "org.model-gate.base-revision"}}' "$BASE_IMAGE" \
           2>/dev/null) != "$BASE_REVISION" ]]; then
    log "rebuilding $BASE_IMAGE (made by an older container-setup)"
    podman rmi -f "$BASE_IMAGE" >/dev/null
fi
if ! podman image exists "$BASE_IMAGE"; then
    log "building $BASE_IMAGE with debootstrap ($SUITE, minbase)"
    rootfs=$(mktemp -d "$STATE_DIR/rootfs.XXXXXX")
    trap 'rm -rf "$rootfs"' EXIT
    debootstrap --variant=minbase "$SUITE" "$rootfs" "$MIRROR" >"$STATE_DIR/debootstrap.log" 2>&1 \
        || { tail -20 "$STATE_DIR/debootstrap.log" >&2; exit 1; }
    # The same sources and apt trimming as Debian's own slim image.
    rm -f "$rootfs/etc/apt/sources.list"
    cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $SECURITY_MIRROR
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' >"$rootfs/etc/apt/apt.conf.d/docker-no-recommends"
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
        "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/var/log/*.log
    # mktemp made the folder 0700, and "." carries that into the image as /: other users (model
    # code runs as one) could not reach any file.
    chmod 755 "$rootfs"
    tar --numeric-owner -C "$rootfs" -c . |
        podman import --change 'CMD ["bash"]' --change "LABEL org.model-gate.base-revision=$BASE_REVISION" \
            - "$BASE_IMAGE" >/dev/null
    log "imported $BASE_IMAGE"
fi

if [[ ${1:-} == --print-env ]]; then
    echo "CONTAINERS_CONF=$CONTAINERS_CONF"
    echo "CONTAINERS_STORAGE_CONF=$CONTAINERS_STORAGE_CONF"
fi
