#!/usr/bin/env bash
# Provision the "local world" crossdock needs on a Debian 12 machine that has Debian's archive and PyPI
# but no Docker Hub: the Docker engine, buildx, QEMU binfmt handlers, a distribution registry on
# 127.0.0.1:5000, multi-arch Debian base images built from Debian's archive, and this checkout's venv.
#
# Idempotent: every step checks before it acts, so a warm machine passes through in seconds.
# `inv setup --fix` runs single steps of it (scripts/provision-local.sh dockerd registry ...).
# Slow results (rootfs tarballs, images in the registry's storage) are cached under $CROSSDOCK_STATE.
# Run as root. See ../shared/ENVIRONMENT.md for where each recipe comes from.
set -euo pipefail

STATE=${CROSSDOCK_STATE:-/var/lib/crossdock}
REGISTRY_ADDR=${CROSSDOCK_LOCAL_REGISTRY:-127.0.0.1:5000}
BASE_REPO="$REGISTRY_ADDR/crossdock/debian"
BASE_TAG=bookworm
# Debian architectures of the base images; arm64 and armhf are bootstrapped under QEMU.
BASE_ARCHES=${CROSSDOCK_BASE_ARCHES:-"amd64 arm64 armhf"}
CHECKOUT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PLUGIN_DIR=/usr/libexec/docker/cli-plugins

log() { printf '[provision %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { printf '[provision] error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (it installs packages and starts dockerd)"
mkdir -p "$STATE"

# Docker platform (os/arch[/variant]) of a Debian architecture.
docker_platform() {
  case "$1" in
    amd64) echo linux/amd64 ;; arm64) echo linux/arm64 ;; armhf) echo linux/arm/v7 ;;
    # Debian's armel port targets ARMv5TE, which runs on v6 boards.
    armel) echo linux/arm/v6 ;; i386) echo linux/386 ;; ppc64el) echo linux/ppc64le ;;
    s390x) echo linux/s390x ;; *) die "no Docker platform known for Debian arch $1" ;;
  esac
}

step_packages() {
  local pkgs=(docker.io containerd runc qemu-user-static binfmt-support docker-registry mmdebstrap
              apache2-utils arch-test python3-venv git curl ca-certificates)
  local missing=()
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then log "packages: all present"; return; fi
  log "packages: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

step_binfmt() {
  if [ ! -e /proc/sys/fs/binfmt_misc/status ]; then
    log "binfmt_misc: mounting"
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  fi
  local arch missing=0
  for arch in aarch64 arm riscv64 ppc64le s390x; do
    [ -e "/proc/sys/fs/binfmt_misc/qemu-$arch" ] || missing=1
  done
  if [ $missing = 1 ]; then
    log "binfmt_misc: registering qemu-user-static handlers"
    update-binfmts --enable >/dev/null 2>&1 || true
    # qemu-user-static ships its formats for binfmt-support; importing them again is harmless.
    update-binfmts --import >/dev/null 2>&1 || true
  fi
  for arch in aarch64 arm; do
    local f="/proc/sys/fs/binfmt_misc/qemu-$arch"
    [ -e "$f" ] || die "QEMU handler qemu-$arch is not registered (is qemu-user-static installed?)"
    grep -q '^flags:.*F' "$f" || die "QEMU handler qemu-$arch lacks the F flag (fix-binary)"
    if [ "$(head -n 1 "$f")" != enabled ]; then
      log "binfmt_misc: qemu-$arch was disabled: enabling it"
      echo 1 >"$f"
    fi
  done
  log "binfmt_misc: qemu handlers registered and enabled, with the F flag"
}

step_buildx() {
  if docker buildx version >/dev/null 2>&1; then log "buildx: $(docker buildx version)"; return; fi
  # Not packaged for bookworm; trixie's docker-buildx needs only libc6 >= 2.34. A private apt
  # state keeps trixie out of the system's sources.
  local apt="$STATE/apt"
  mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/parts" "$apt/deb"
  echo "deb http://deb.debian.org/debian trixie main" >"$apt/trixie.list"
  local opts=(-o "Dir::Etc::SourceList=$apt/trixie.list" -o "Dir::Etc::SourceParts=$apt/parts"
              -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache" -o APT::Sandbox::User=root)
  log "buildx: fetching docker-buildx from Debian trixie"
  apt-get "${opts[@]}" update -qq
  (cd "$apt/deb" && rm -f docker-buildx_*.deb && apt-get "${opts[@]}" download docker-buildx >/dev/null)
  rm -rf "$apt/x" && dpkg -x "$apt"/deb/docker-buildx_*.deb "$apt/x"
  install -D -m 0755 "$apt/x/usr/libexec/docker/cli-plugins/docker-buildx" "$PLUGIN_DIR/docker-buildx"
  log "buildx: $(docker buildx version)"
}

step_dockerd() {
  if docker info >/dev/null 2>&1; then log "dockerd: running"; return; fi
  # A dockerd killed with its machine session leaves its pid file behind, and dockerd refuses to start.
  if [ -f /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
    rm -f /var/run/docker.pid
  fi
  log "dockerd: starting (log: $STATE/dockerd.log)"
  nohup dockerd >"$STATE/dockerd.log" 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && { log "dockerd: ready"; return; }
    sleep 1
  done
  tail -n 20 "$STATE/dockerd.log" >&2
  die "dockerd did not answer within 60 s"
}

step_registry() {
  if curl -fsS "http://$REGISTRY_ADDR/v2/" >/dev/null 2>&1; then log "registry: answering on $REGISTRY_ADDR"; return; fi
  mkdir -p "$STATE/registry/data"
  cat >"$STATE/registry/config.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $STATE/registry/data
  delete:
    enabled: true
http:
  addr: $REGISTRY_ADDR
EOF
  log "registry: starting on $REGISTRY_ADDR (storage: $STATE/registry/data)"
  nohup docker-registry serve "$STATE/registry/config.yml" >"$STATE/registry/registry.log" 2>&1 &
  for _ in $(seq 1 30); do
    curl -fsS "http://$REGISTRY_ADDR/v2/" >/dev/null 2>&1 && { log "registry: ready"; return; }
    sleep 1
  done
  tail -n 20 "$STATE/registry/registry.log" >&2
  die "registry did not answer on $REGISTRY_ADDR within 30 s"
}

image_exists() {  # REPO TAG -> 0 when the registry has the tag
  local repo=${1#"$REGISTRY_ADDR"/}
  curl -fs -o /dev/null -I \
    -H 'Accept: application/vnd.docker.distribution.manifest.list.v2+json' \
    -H 'Accept: application/vnd.oci.image.index.v1+json' \
    -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    "http://$REGISTRY_ADDR/v2/$repo/manifests/$2"
}

DEBIAN_MIRROR=${CROSSDOCK_DEBIAN_MIRROR:-http://deb.debian.org}

bootstrap_rootfs() {  # DEBARCH -> $STATE/rootfs/DEBARCH/rootfs.tar
  local arch=$1 dir="$STATE/rootfs/$1"
  [ -s "$dir/rootfs.tar" ] && return 0
  mkdir -p "$dir"
  local opts=(--quiet --variant=minbase --mode=root --architectures="$arch"
              --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*'
              --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/doc/*/copyright'
              --aptopt='Acquire::Retries "3"')
  local main="deb $DEBIAN_MIRROR/debian bookworm main"
  local updates="deb $DEBIAN_MIRROR/debian bookworm-updates main"
  local security="deb $DEBIAN_MIRROR/debian-security bookworm-security main"
  log "base image: mmdebstrap bookworm for $arch"
  if ! mmdebstrap "${opts[@]}" bookworm "$dir/partial-rootfs.tar" "$main" "$updates" "$security" \
       >"$dir/mmdebstrap.log" 2>&1; then
    # Seen on this project's machines: a mirror serving a stale bookworm-security index for some
    # architectures (size mismatch). The image is still bookworm; it only lacks security updates.
    log "base image: WARNING: bookworm-security unusable for $arch ($(grep -m1 -o 'File has unexpected size[^.]*' "$dir/mmdebstrap.log" || echo 'see mmdebstrap.log')); retrying without it"
    mmdebstrap "${opts[@]}" bookworm "$dir/partial-rootfs.tar" "$main" "$updates" >>"$dir/mmdebstrap.log" 2>&1 \
      || { tail -n 30 "$dir/mmdebstrap.log" >&2; die "mmdebstrap failed for $arch"; }
  fi
  mv "$dir/partial-rootfs.tar" "$dir/rootfs.tar"
  log "base image: rootfs for $arch ready"
}

step_base_images() {
  local record="$STATE/rootfs/arches" have missing=""
  have=" $(cat "$record" 2>/dev/null || true) "
  for arch in $BASE_ARCHES; do case "$have" in *" $arch "*) ;; *) missing="$missing $arch" ;; esac; done
  if image_exists "$BASE_REPO" "$BASE_TAG" && [ -z "$missing" ]; then
    log "base image: $BASE_REPO:$BASE_TAG present ($(echo $have))"; return
  fi
  # Keep the architectures an earlier run added (CROSSDOCK_BASE_ARCHES="... armel"): only ever grow.
  for arch in $have; do case " $BASE_ARCHES " in *" $arch "*) ;; *) BASE_ARCHES="$BASE_ARCHES $arch" ;; esac; done
  local arch pids=() refs=()
  for arch in $BASE_ARCHES; do bootstrap_rootfs "$arch" & pids+=($!); done
  for pid in "${pids[@]}"; do wait "$pid" || die "a rootfs bootstrap failed"; done
  for arch in $BASE_ARCHES; do
    local dir="$STATE/rootfs/$arch" platform
    platform=$(docker_platform "$arch")
    printf 'FROM scratch\nADD rootfs.tar /\nCMD ["bash"]\n' >"$dir/Dockerfile"
    printf '*.log\npartial-*\nmetadata.json\n' >"$dir/.dockerignore"
    log "base image: pushing $platform"
    docker buildx build --quiet --provenance=false --platform "$platform" \
      --tag "$BASE_REPO:$BASE_TAG-$arch" --push --metadata-file "$dir/metadata.json" "$dir" >/dev/null
    refs+=("$BASE_REPO@$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["containerimage.digest"])' "$dir/metadata.json")")
  done
  docker buildx imagetools create --tag "$BASE_REPO:$BASE_TAG" "${refs[@]}"
  echo "$BASE_ARCHES" >"$record"
  log "base image: $BASE_REPO:$BASE_TAG ($BASE_ARCHES)"
}

step_venv() {
  local venv="$CHECKOUT/.venv" stamp="$CHECKOUT/.venv/.requirements.sha"
  local want
  want=$(sha256sum "$CHECKOUT/requirements.txt" | cut -d' ' -f1)
  if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    log "venv: $venv up to date"; return
  fi
  log "venv: installing requirements.txt into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$CHECKOUT/requirements.txt"
  echo "$want" >"$stamp"
}

usage() {
  echo "usage: $0 [STEP ...]   steps: packages binfmt buildx dockerd registry base-images venv (default: all)" >&2
  exit 2
}

steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(packages binfmt buildx dockerd registry base-images venv)
for s in "${steps[@]}"; do
  case "$s" in
    packages) step_packages ;; binfmt) step_binfmt ;; buildx) step_buildx ;; dockerd) step_dockerd ;;
    registry) step_registry ;; base-images) step_base_images ;; venv) step_venv ;;
    *) usage ;;
  esac
done
[ $# -gt 0 ] || log "done: engine, buildx, QEMU, registry $REGISTRY_ADDR and $BASE_REPO:$BASE_TAG are ready"
