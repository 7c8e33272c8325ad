#!/usr/bin/env bash
# Provision the "local world" crossdock needs on a Debian 12 machine that has Debian's archive and PyPI
# but no Docker Hub: the Docker engine, buildx, QEMU binfmt handlers, a distribution registry on
# 127.0.0.1:5000, multi-arch Debian base images built from Debian's archive, and this checkout's venv.
#
# Idempotent: every step checks before it acts, so a warm machine passes through in seconds.
# `inv setup --fix` runs single steps of it (scripts/provision-local.sh dockerd registry ...).
# Slow results (rootfs tarballs, images in the registry's storage) are cached under $CROSSDOCK_STATE.
# Run as root. See ../shared/ENVIRONMENT.md for where each recipe comes from.
#
# Every path and port it uses is a parameter (environment variable, default in brackets):
#   CROSSDOCK_STATE           state dir: apt state for buildx, registry config/storage/log/pid file,
#                             rootfs tarballs, dockerd's log [/var/lib/crossdock]
#   CROSSDOCK_LOCAL_REGISTRY  address the registry listens on, and where the base images go [127.0.0.1:5000]
#   CROSSDOCK_BASE_RELEASES   Debian releases of the base images, the default world's first ["trixie bookworm"]
#   CROSSDOCK_BASE_ARCHES     Debian architectures of every release's base image [trixie: amd64 arm64 armhf
#                             armel i386 ppc64el s390x riscv64; bookworm: amd64 arm64 armhf]
#   CROSSDOCK_PLUGIN_DIR      where the buildx CLI plugin is looked for and installed; must be one the
#                             docker CLI searches [/usr/libexec/docker/cli-plugins]
#   CROSSDOCK_VENV            the Python venv made from requirements.txt [<checkout>/.venv]
#   CROSSDOCK_DOCKERD_LOG     log of the dockerd this script starts [$CROSSDOCK_STATE/dockerd.log]
#   CROSSDOCK_DOCKERD_PIDFILE pid file of that dockerd [/var/run/docker.pid]
#   CROSSDOCK_ENGINE          the Docker engine to run: 26.1 (trixie's packages, unpacked under
#                             $CROSSDOCK_STATE/engines) or 20.10 (bookworm's docker.io) [26.1]
#   CROSSDOCK_IMAGE_STORE     the engine's image store: containerd or classic [containerd on 26.1;
#                             20.10 has only classic]
#   CROSSDOCK_DOCKER_DATA_ROOT  dockerd's --data-root [/var/lib/docker-26.1 for 26.1, /var/lib/docker
#                             for 20.10]: one per engine, so switching engines keeps both caches
#   CROSSDOCK_BUILD_CACHE_KEEP  the build cache BuildKit's garbage collection keeps [12GB]
#   CROSSDOCK_APT_SOURCES_DIR where the machine's apt sources are read [/etc/apt]
#   CROSSDOCK_DEBIAN_MIRROR   Debian archive URI serving the base images' releases (and trixie, for buildx)
#                             [the URI the machine's apt sources use for suite bookworm]
#   CROSSDOCK_DEBIAN_SECURITY_MIRROR  URI serving <release>-security, or `none` to bootstrap without it
#                             [the URI the machine's apt sources use for suite bookworm-security]
#   CROSSDOCK_SOURCE_DATE_EPOCH  timestamp of the base images' files, which makes them reproducible
#                             [the Date of the mirror's InRelease of each release, recorded in
#                             $CROSSDOCK_STATE/rootfs/<release>/epoch]
# The registry writes its pid to $CROSSDOCK_STATE/registry/registry.pid. Fixed by the kernel, not a
# parameter: /proc/sys/fs/binfmt_misc.
#
# Steps: packages binfmt buildx cosign dockerd registry base-images venv (default: all, in this order);
# registry-prune (not a default) drops the test suite's images of earlier runs from the local registry.
# `mirrors` prints the Debian mirrors the base images and buildx would come from, and changes nothing.
# A failure never goes unexplained: every error names the step, and an unexpected failing command is
# reported with its line (the ERR trap below, inherited by functions and subshells through `set -E`).
set -Eeuo pipefail
shopt -s inherit_errexit

STEP=startup
on_error() {  # EXIT-STATUS LINE COMMAND FUNCTION
  local where=""
  [ "$BASHPID" = "$$" ] || where=" (in a subshell)"
  printf '[provision] error: step %s failed: %s line %s, in %s%s: command exited %s: %s\n' \
    "$STEP" "${BASH_SOURCE[0]}" "$2" "$4" "$where" "$1" "$3" >&2
  exit "$1"
}
trap 'on_error $? $LINENO "$BASH_COMMAND" "${FUNCNAME[0]:-main}"' ERR

CHECKOUT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=${CROSSDOCK_STATE:-/var/lib/crossdock}
REGISTRY_ADDR=${CROSSDOCK_LOCAL_REGISTRY:-127.0.0.1:5000}
BASE_REPO="$REGISTRY_ADDR/crossdock/debian"
# Debian releases of the base images (tag = codename); the first is the default world (local-world.yaml).
BASE_RELEASES=${CROSSDOCK_BASE_RELEASES:-"trixie bookworm"}
# Debian architectures of each release's base image; the foreign ones are bootstrapped under QEMU.
# trixie: every architecture Debian 13 ships; bookworm (oldstable, still tested): the three most used.
base_arches() {  # RELEASE
  if [ -n "${CROSSDOCK_BASE_ARCHES:-}" ]; then echo "$CROSSDOCK_BASE_ARCHES"; return; fi
  case "$1" in
    bookworm) echo "amd64 arm64 armhf" ;;
    *) echo "amd64 arm64 armhf armel i386 ppc64el s390x riscv64" ;;
  esac
}
PLUGIN_DIR=${CROSSDOCK_PLUGIN_DIR:-/usr/libexec/docker/cli-plugins}
VENV=${CROSSDOCK_VENV:-$CHECKOUT/.venv}
DOCKERD_LOG=${CROSSDOCK_DOCKERD_LOG:-$STATE/dockerd.log}
DOCKERD_PIDFILE=${CROSSDOCK_DOCKERD_PIDFILE:-/var/run/docker.pid}
APT_SOURCES_DIR=${CROSSDOCK_APT_SOURCES_DIR:-/etc/apt}
ENGINE=${CROSSDOCK_ENGINE:-26.1}
case "$ENGINE" in
  26.1) STORE=${CROSSDOCK_IMAGE_STORE:-containerd} DATA_ROOT=${CROSSDOCK_DOCKER_DATA_ROOT:-/var/lib/docker-26.1} ;;
  *) STORE=${CROSSDOCK_IMAGE_STORE:-classic} DATA_ROOT=${CROSSDOCK_DOCKER_DATA_ROOT:-/var/lib/docker} ;;
esac
BINFMT=/proc/sys/fs/binfmt_misc

log() { printf '[provision %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { printf '[provision] error: step %s: %s\n' "$STEP" "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (it installs packages and starts dockerd)"
mkdir -p "$STATE"

# Docker platform (os/arch[/variant]) of a Debian architecture.
docker_platform() {
  case "$1" in
    amd64) echo linux/amd64 ;; arm64) echo linux/arm64 ;; armhf) echo linux/arm/v7 ;;
    # Debian's armel port targets ARMv5TE (soft float).
    armel) echo linux/arm/v5 ;; i386) echo linux/386 ;; ppc64el) echo linux/ppc64le ;;
    s390x) echo linux/s390x ;; riscv64) echo linux/riscv64 ;; *) die "no Docker platform known for Debian arch $1" ;;
  esac
}

# The first URI of an enabled `deb` source for SUITE in the machine's apt sources: deb822 entries
# (sources.list.d/*.sources: Types/URIs/Suites/Enabled fields), then one-line entries
# (sources.list, sources.list.d/*.list: `deb [options] URI SUITE COMPONENT...`). Empty if none.
apt_source_uri() {  # SUITE
  local files=() f uri=""
  for f in "$APT_SOURCES_DIR"/sources.list.d/*.sources; do [ -f "$f" ] && files+=("$f"); done
  if [ ${#files[@]} -gt 0 ]; then
    uri=$(awk -v suite="$1" '
      BEGIN { RS = ""; FS = "\n" }
      {
        delete v; key = ""
        for (i = 1; i <= NF; i++) {
          line = $i
          if (line ~ /^#/) continue
          if (line ~ /^[ \t]/) { if (key != "") v[key] = v[key] " " line; continue }
          n = index(line, ":"); if (n == 0) continue
          key = tolower(substr(line, 1, n - 1)); v[key] = substr(line, n + 1)
        }
        enabled = tolower(v["enabled"]); gsub(/[ \t]/, "", enabled)
        if (enabled == "no" || (" " v["types"] " ") !~ /[ \t]deb[ \t]/) next
        hit = 0; ns = split(v["suites"], s, /[ \t]+/)
        for (j = 1; j <= ns; j++) if (s[j] == suite) hit = 1
        if (!hit) next
        nu = split(v["uris"], u, /[ \t]+/)
        for (j = 1; j <= nu; j++) if (u[j] != "") { print u[j]; exit }
      }' "${files[@]}")
    if [ -n "$uri" ]; then echo "$uri"; return 0; fi
  fi
  files=()
  for f in "$APT_SOURCES_DIR/sources.list" "$APT_SOURCES_DIR"/sources.list.d/*.list; do [ -f "$f" ] && files+=("$f"); done
  if [ ${#files[@]} -gt 0 ]; then
    awk -v suite="$1" '
      $1 != "deb" { next }
      {
        i = 2
        if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
        if ($(i + 1) == suite) { print $i; exit }
      }' "${files[@]}"
  fi
}

# MIRROR and SECURITY_MIRROR ("" for none): the overrides, else what the machine's apt uses.
MIRROR="" SECURITY_MIRROR="" MIRRORS_KNOWN=""
find_mirrors() {
  [ -z "$MIRRORS_KNOWN" ] || return 0
  local where="$APT_SOURCES_DIR/sources.list, $APT_SOURCES_DIR/sources.list.d/*.list or *.sources"
  MIRROR=${CROSSDOCK_DEBIAN_MIRROR:-}
  if [ -z "$MIRROR" ]; then
    MIRROR=$(apt_source_uri bookworm)
    [ -n "$MIRROR" ] || die "no Debian mirror: no enabled \`deb\` source for suite bookworm in $where;" \
      "set CROSSDOCK_DEBIAN_MIRROR to the archive's URI (e.g. http://deb.debian.org/debian)"
  fi
  SECURITY_MIRROR=${CROSSDOCK_DEBIAN_SECURITY_MIRROR:-}
  if [ -z "$SECURITY_MIRROR" ]; then
    SECURITY_MIRROR=$(apt_source_uri bookworm-security)
    [ -n "$SECURITY_MIRROR" ] || die "no Debian security mirror: no enabled \`deb\` source for suite" \
      "bookworm-security in $where; set CROSSDOCK_DEBIAN_SECURITY_MIRROR to its URI" \
      "(e.g. http://deb.debian.org/debian-security), or to \`none\` for base images without security updates"
  fi
  [ "$SECURITY_MIRROR" != none ] || SECURITY_MIRROR=""
  MIRROR=${MIRROR%/} SECURITY_MIRROR=${SECURITY_MIRROR%/} MIRRORS_KNOWN=1
}

step_mirrors() {
  find_mirrors
  echo "debian: $MIRROR"
  echo "debian-security: ${SECURITY_MIRROR:-none}"
}

step_packages() {
  local pkgs=(docker.io containerd runc qemu-user-static binfmt-support docker-registry mmdebstrap
              apache2-utils arch-test python3-venv git curl ca-certificates shellcheck skopeo zstd busybox-static
              openssh-server openssh-client)
  local absent=()
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || absent+=("$p")
  done
  if [ ${#absent[@]} -eq 0 ]; then log "packages: all present"; return; fi
  log "packages: installing ${absent[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${absent[@]}" >/dev/null
}

step_binfmt() {
  if [ ! -e "$BINFMT/status" ]; then
    log "binfmt_misc: mounting"
    mount -t binfmt_misc binfmt_misc "$BINFMT"
  fi
  local arch missing=0 out
  for arch in aarch64 arm riscv64 ppc64le s390x; do
    [ -e "$BINFMT/qemu-$arch" ] || missing=1
  done
  if [ $missing = 1 ]; then
    log "binfmt_misc: registering qemu-user-static handlers"
    # Both report an error when one format of many is already there or unusable: what matters is
    # checked just below, and their output is shown if it then fails.
    out=$(update-binfmts --enable 2>&1) || log "binfmt_misc: update-binfmts --enable: $out"
    # qemu-user-static ships its formats for binfmt-support; importing them again is harmless.
    out=$(update-binfmts --import 2>&1) || log "binfmt_misc: update-binfmts --import: $out"
  fi
  for arch in aarch64 arm; do
    local f="$BINFMT/qemu-$arch"
    [ -e "$f" ] || die "QEMU handler qemu-$arch is not registered (is qemu-user-static installed?)"
    grep -q '^flags:.*F' "$f" || die "QEMU handler qemu-$arch lacks the F flag (fix-binary)"
    if [ "$(head -n 1 "$f")" != enabled ]; then
      log "binfmt_misc: qemu-$arch was disabled: enabling it"
      echo 1 >"$f"
    fi
  done
  log "binfmt_misc: qemu handlers registered and enabled, with the F flag"
}

# Download PACKAGE from Debian trixie with a private apt state (trixie never reaches the system's
# sources) and unpack it (dpkg -x, nothing installed) into $STATE/apt/x.
trixie_unpack() {  # PACKAGE
  local apt="$STATE/apt"
  mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/parts" "$apt/deb"
  echo "deb $MIRROR trixie main" >"$apt/trixie.list"
  local opts=(-o "Dir::Etc::SourceList=$apt/trixie.list" -o "Dir::Etc::SourceParts=$apt/parts"
              -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache" -o APT::Sandbox::User=root)
  apt-get "${opts[@]}" update -qq
  rm -f "$apt/deb/$1"_*.deb
  (cd "$apt/deb" && apt-get "${opts[@]}" download "$1" >/dev/null)
  ls "$apt/deb/$1"_*.deb >/dev/null 2>&1 || die "apt-get download $1 from trixie ($MIRROR) gave no .deb"
  rm -rf "$apt/x"
  dpkg -x "$apt/deb/$1"_*.deb "$apt/x"
}

step_buildx() {
  local plugin="$PLUGIN_DIR/docker-buildx"
  if [ -x "$plugin" ] && "$plugin" version >/dev/null 2>&1; then
    log "buildx: $("$plugin" version) in $PLUGIN_DIR"
  else
    # Not packaged for bookworm; trixie's docker-buildx needs only libc6 >= 2.34. A private apt
    # state keeps trixie out of the system's sources.
    find_mirrors
    log "buildx: fetching docker-buildx from Debian trixie ($MIRROR) into $PLUGIN_DIR"
    trixie_unpack docker-buildx
    install -D -m 0755 "$STATE/apt/x/usr/libexec/docker/cli-plugins/docker-buildx" "$plugin"
    log "buildx: $("$plugin" version) installed in $PLUGIN_DIR"
  fi
  docker buildx version >/dev/null 2>&1 || die "the docker CLI finds no buildx plugin: is $PLUGIN_DIR one of" \
    "the directories it searches (~/.docker/cli-plugins, /usr/libexec/docker/cli-plugins, ...;" \
    "docker 25+: \"cliPluginsExtraDirs\" in ~/.docker/config.json)?"
}

# cosign (image signatures and attestations, `inv release --sign-key`, `inv verify`): not in bookworm;
# trixie's cosign 2.5 is a static Go binary needing only libc. Installed as /usr/local/bin/cosign.
step_cosign() {
  local bin=/usr/local/bin/cosign
  if [ -x "$bin" ] && "$bin" version >/dev/null 2>&1; then
    log "cosign: $("$bin" version 2>/dev/null | sed -n 's/^GitVersion: *//p') in $bin"
    return
  fi
  find_mirrors
  log "cosign: fetching cosign from Debian trixie ($MIRROR) into $bin"
  trixie_unpack cosign
  [ -x "$STATE/apt/x/usr/bin/cosign" ] || die "the trixie cosign package has no usr/bin/cosign"
  install -D -m 0755 "$STATE/apt/x/usr/bin/cosign" "$bin"
  "$bin" version >/dev/null 2>&1 || die "$bin does not run here: $("$bin" version 2>&1 | tail -n 1)"
  log "cosign: $("$bin" version 2>/dev/null | sed -n 's/^GitVersion: *//p') installed in $bin"
}

# The Docker engine. CROSSDOCK_ENGINE picks it: 26.1 (Debian trixie's docker.io 26.1 with trixie's
# containerd 1.7 and tini, unpacked under $STATE/engines/26.1, never installed system-wide: they need
# only libc6 >= 2.34) or 20.10 (bookworm's docker.io, from the packages step). One engine runs at a
# time on the one socket: when the other one answers there, and this script started it (its pid
# file), it is stopped first. Each engine keeps its own data root, so switching keeps both caches.
engine_binaries() {
  case "$ENGINE" in
    20.10) ENGINE_PATH=$PATH; return ;;
    26.1) ;;
    *) die "CROSSDOCK_ENGINE=$ENGINE: use 26.1 (default) or 20.10" ;;
  esac
  local dir="$STATE/engines/$ENGINE"
  ENGINE_PATH="$dir/usr/sbin:$dir/usr/bin:$PATH"
  if [ -x "$dir/usr/sbin/dockerd" ] && "$dir/usr/sbin/dockerd" --version 2>/dev/null | grep -q "version $ENGINE\."; then
    return
  fi
  find_mirrors
  log "dockerd: fetching docker.io $ENGINE, containerd and tini from Debian trixie ($MIRROR) into $dir"
  rm -rf "$dir.new"
  local pkg
  for pkg in docker.io containerd tini; do
    trixie_unpack "$pkg"
    mkdir -p "$dir.new" && cp -a "$STATE/apt/x/." "$dir.new/"
  done
  "$dir.new/usr/sbin/dockerd" --version | grep -q "version $ENGINE\." ||
    die "trixie's docker.io is not Docker $ENGINE: $("$dir.new/usr/sbin/dockerd" --version 2>&1 | head -n 1)"
  rm -rf "$dir" && mv "$dir.new" "$dir"
}

# "VERSION STORE" of the engine answering on the socket, or nothing.
running_engine() {
  { docker info --format '{{.ServerVersion}} {{range .DriverStatus}}{{index . 0}}={{index . 1}};{{end}}' 2>/dev/null |
    awk '$1 != "" { print $1, ($2 ~ /snapshotter/ ? "containerd" : "classic") }'; } || true
}

# The running engine ("VERSION STORE", from running_engine) is the one asked for.
is_wanted() { case "$1" in "$ENGINE".*" $STORE") return 0 ;; *) return 1 ;; esac; }

stop_dockerd() {  # DESCRIPTION
  local pid=""
  [ -f "$DOCKERD_PIDFILE" ] && pid=$(cat "$DOCKERD_PIDFILE")
  if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
    die "the engine on the socket is $1, not Docker $ENGINE with the $STORE image store, and it was not" \
      "started by this script (no live pid in $DOCKERD_PIDFILE): stop it, or set CROSSDOCK_ENGINE /" \
      "CROSSDOCK_IMAGE_STORE to match it"
  fi
  log "dockerd: stopping $1 (pid $pid) to start Docker $ENGINE with the $STORE image store"
  kill "$pid"
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.5; done
  kill -9 "$pid" 2>/dev/null || true
  sleep 1
}

step_dockerd() {
  local want="$ENGINE $STORE" have
  case "$ENGINE $STORE" in
    "26.1 containerd" | "26.1 classic" | "20.10 classic") ;;
    *) die "CROSSDOCK_ENGINE=$ENGINE with CROSSDOCK_IMAGE_STORE=$STORE: use engine 26.1 (image store containerd" \
         "or classic) or 20.10 (classic only)" ;;
  esac
  have=$(running_engine)
  if [ -n "$have" ]; then
    if is_wanted "$have"; then log "dockerd: running (Docker ${have% *}, $STORE image store)"; return; fi
    stop_dockerd "Docker ${have% *} with the ${have#* } image store"
  fi
  engine_binaries
  # A dockerd killed with its machine session leaves its pid file behind, and dockerd refuses to start.
  if [ -f "$DOCKERD_PIDFILE" ] && ! kill -0 "$(cat "$DOCKERD_PIDFILE")" 2>/dev/null; then
    rm -f "$DOCKERD_PIDFILE"
  fi
  mkdir -p "$(dirname "$DOCKERD_LOG")" "$STATE/engines"
  local config="$STATE/engines/daemon-$ENGINE-$STORE.json" snapshotter=false
  [ "$STORE" = containerd ] && snapshotter=true
  # BuildKit's garbage collection keeps the build cache bounded while a run builds (its default, a tenth
  # of the disk's nominal size, is larger than what this shared disk can give).
  printf '{"features": {"containerd-snapshotter": %s}, "builder": {"gc": {"enabled": true, "defaultKeepStorage": "%s"}}}\n' \
    "$snapshotter" "${CROSSDOCK_BUILD_CACHE_KEEP:-12GB}" >"$config"
  log "dockerd: starting Docker $ENGINE, $STORE image store, data root $DATA_ROOT (log: $DOCKERD_LOG)"
  PATH=$ENGINE_PATH nohup dockerd --config-file "$config" --data-root "$DATA_ROOT" \
    --pidfile "$DOCKERD_PIDFILE" >"$DOCKERD_LOG" 2>&1 &
  for _ in $(seq 1 60); do
    have=$(running_engine)
    if [ -n "$have" ]; then
      if is_wanted "$have"; then log "dockerd: ready (Docker ${have% *}, $STORE image store)"; return; fi
      die "dockerd answered as $have, not $want (log: $DOCKERD_LOG)"
    fi
    sleep 1
  done
  tail -n 20 "$DOCKERD_LOG" >&2
  die "dockerd did not answer within 60 s (log: $DOCKERD_LOG)"
}

step_registry() {
  local dir="$STATE/registry"
  if curl -fsS "http://$REGISTRY_ADDR/v2/" >/dev/null 2>&1; then log "registry: answering on $REGISTRY_ADDR"; return; fi
  mkdir -p "$dir/data"
  cat >"$dir/config.yml" <<CONFIG
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: $REGISTRY_ADDR
CONFIG
  log "registry: starting on $REGISTRY_ADDR (storage: $dir/data, pid file: $dir/registry.pid)"
  nohup docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 &
  echo $! >"$dir/registry.pid"
  for _ in $(seq 1 30); do
    curl -fsS "http://$REGISTRY_ADDR/v2/" >/dev/null 2>&1 && { log "registry: ready"; return; }
    kill -0 "$(cat "$dir/registry.pid")" 2>/dev/null || break
    sleep 1
  done
  tail -n 20 "$dir/registry.log" >&2
  die "registry did not answer on $REGISTRY_ADDR within 30 s (log: $dir/registry.log)"
}

# The test suite pushes every image under test/ with a name of its own (~4 GB a full run), and nothing
# reads them after the run. Drop the test/ repositories older than any run in progress (CI's limit is
# 90 min) and collect their blobs; the registry is stopped meanwhile (garbage-collect is not safe beside
# pushes). Without --delete-untagged: the per-platform manifests of kept indexes stay. Not a default step.
step_registry_prune() {
  local dir="$STATE/registry" repos="$STATE/registry/data/docker/registry/v2/repositories/test" old pid
  # a new machine's registry has no test/ yet (find would fail on it, and pipefail with it)
  if [ ! -d "$repos" ]; then log "registry-prune: no test/ repository in $dir/data"; return; fi
  old=$(find "$repos" -mindepth 1 -maxdepth 1 -type d -mmin +120 | wc -l)
  if [ "$old" -eq 0 ]; then log "registry-prune: no test/ repository older than 2 h"; return; fi
  local before; before=$(du -sh "$dir/data" | cut -f1)
  pid=$(cat "$dir/registry.pid" 2>/dev/null || true)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && die "registry-prune: the registry (pid $pid) did not stop"
  elif curl -fsS "http://$REGISTRY_ADDR/v2/" >/dev/null 2>&1; then
    log "registry-prune: a registry answers on $REGISTRY_ADDR but not from $dir/registry.pid: left alone"
    return
  fi
  find "$repos" -mindepth 1 -maxdepth 1 -type d -mmin +120 -exec rm -rf {} +
  docker-registry garbage-collect "$dir/config.yml" >"$dir/gc.log" 2>&1 ||
    { tail -n 20 "$dir/gc.log" >&2; die "registry-prune: garbage-collect failed (log: $dir/gc.log)"; }
  log "registry-prune: removed $old test/ repositories; storage $before -> $(du -sh "$dir/data" | cut -f1)"
  step_registry
}

image_exists() {  # REPO TAG -> 0 when the registry has the tag
  local repo=${1#"$REGISTRY_ADDR"/}
  curl -fs -o /dev/null -I \
    -H 'Accept: application/vnd.docker.distribution.manifest.list.v2+json' \
    -H 'Accept: application/vnd.oci.image.index.v1+json' \
    -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    "http://$REGISTRY_ADDR/v2/$repo/manifests/$2"
}

bootstrap_rootfs() {  # RELEASE DEBARCH -> $STATE/rootfs/RELEASE/DEBARCH/rootfs.tar (run in the background)
  local release=$1 arch=$2 dir="$STATE/rootfs/$1/$2"
  [ -s "$dir/rootfs.tar" ] && return 0
  mkdir -p "$dir"
  # The host's resolv.conf and hostname stay out of the image (the engine provides both at run time),
  # and with SOURCE_DATE_EPOCH the tarball is the same for the same mirror content: every fresh
  # provisioning from one mirror state gives the same layer, so BuildKit's cache of the stages built
  # on it (keyed by the layers, not by the image's name) carries over.
  # shellcheck disable=SC2016 # $1 is the hooks' own argument (the root directory)
  local opts=(--variant=minbase --mode=root --architectures="$arch"
              --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*'
              --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/doc/*/copyright'
              --aptopt='Acquire::Retries "3"'
              --customize-hook=': >"$1/etc/resolv.conf"' --customize-hook='echo localhost >"$1/etc/hostname"')
  local cmd=(mmdebstrap "${opts[@]}" "$release" "$dir/partial-rootfs.tar"
             "deb $MIRROR $release main" "deb $MIRROR $release-updates main")
  local log_file="$dir/mmdebstrap.log" epoch
  epoch=$(cat "$STATE/rootfs/$release/epoch")
  : >"$log_file"
  log "base image: mmdebstrap $release for $arch"
  if [ -n "$SECURITY_MIRROR" ]; then
    if SOURCE_DATE_EPOCH=$epoch "${cmd[@]}" "deb $SECURITY_MIRROR $release-security main" >>"$log_file" 2>&1; then
      mv "$dir/partial-rootfs.tar" "$dir/rootfs.tar"
      log "base image: $release rootfs for $arch ready"
      return 0
    fi
    # Seen on this project's machines: a mirror serving a stale bookworm-security index for some
    # architectures (size mismatch). The image is still that release; it only lacks security updates.
    log "base image: WARNING: $release-security unusable for $arch ($(grep -m1 '^E: ' "$log_file" || echo "see $log_file"));" \
        "retrying without it"
  fi
  SOURCE_DATE_EPOCH=$epoch "${cmd[@]}" >>"$log_file" 2>&1 || {
    # Seen on this project's machines: a mirror whose index names packages its pool does not serve
    # for some architectures (trixie's armel, ppc64el, s390x). Not this machine's fault, and not the
    # other architectures': that one is left out of the base image (marked, so later runs do not retry
    # for a day) and the pre-flight refuses its platform by name.
    if grep -q '404  Not Found' "$log_file"; then
      grep -o 'http[^ ]*\.deb  404' "$log_file" | sed 's/  404$//' | sort -u >"$dir/unavailable"
      log "base image: WARNING: the mirror does not serve $(wc -l <"$dir/unavailable") of $release's $arch" \
          "packages (404, listed in $dir/unavailable; e.g. $(head -n 1 "$dir/unavailable")): $release's base" \
          "image goes without $arch"
      return 3
    fi
    tail -n 30 "$log_file" >&2
    local quoted
    quoted=$(printf ' %q' "${cmd[@]}")
    die "mmdebstrap failed for $release $arch (log: $log_file): SOURCE_DATE_EPOCH=$epoch$quoted"
  }
  mv "$dir/partial-rootfs.tar" "$dir/rootfs.tar"
  log "base image: $release rootfs for $arch ready"
}

# The architectures RELEASE's base image should have, on stdout, when it lacks one (nothing when complete).
# An architecture the mirror could not serve within the last day is left out (not retried yet).
base_image_wanted() {  # RELEASE
  local release=$1 record="$STATE/rootfs/$1/arches" have=" " arches arch
  arches=$(base_arches "$release")
  # No record yet is the fresh machine's normal case, not an error.
  if [ -e "$record" ]; then have=" $(cat "$record") "; fi
  # Keep the architectures an earlier run added (CROSSDOCK_BASE_ARCHES="... armel"): only ever grow.
  for arch in $have; do case " $arches " in *" $arch "*) ;; *) arches="$arches $arch" ;; esac; done
  local wanted="" missing=""
  for arch in $arches; do
    if [ -n "$(find "$STATE/rootfs/$release/$arch/unavailable" -mmin -1440 2>/dev/null)" ]; then continue; fi
    wanted="$wanted $arch"
    case "$have" in *" $arch "*) ;; *) missing="$missing $arch" ;; esac
  done
  if image_exists "$BASE_REPO" "$release" && [ -z "$missing" ]; then return 0; fi
  echo "${wanted# }"
}

# A release's rootfs tarballs' timestamp: the Date of the mirror's InRelease, recorded once per release
# (so a later bootstrap of one more architecture dates its files the same).
release_epoch() {  # RELEASE
  local file="$STATE/rootfs/$1/epoch" release date
  [ -s "$file" ] && return 0
  mkdir -p "$(dirname "$file")"
  if [ -n "${CROSSDOCK_SOURCE_DATE_EPOCH:-}" ]; then echo "$CROSSDOCK_SOURCE_DATE_EPOCH" >"$file"; return 0; fi
  release=$(curl -fsS "$MIRROR/dists/$1/InRelease")
  date=$(sed -n 's/^Date: //p' <<<"$release")
  [ -n "$date" ] || die "no Date in $MIRROR/dists/$1/InRelease (set CROSSDOCK_SOURCE_DATE_EPOCH)"
  date -d "$date" +%s >"$file"
}

# Earlier versions kept bookworm's tarballs in $STATE/rootfs/DEBARCH: move them where they now belong.
adopt_old_rootfs_layout() {
  local old="$STATE/rootfs" arch arches
  [ -e "$old/arches" ] || return 0
  mkdir -p "$old/bookworm"
  arches=$(cat "$old/arches")
  for arch in $arches; do
    if [ -d "$old/$arch" ] && [ ! -e "$old/bookworm/$arch" ]; then mv "$old/$arch" "$old/bookworm/$arch"; fi
  done
  mv "$old/arches" "$old/bookworm/arches"
}

step_base_images() {
  adopt_old_rootfs_layout
  local release arch arches wanted=() jobs=() pids=() failed=""
  for release in $BASE_RELEASES; do
    arches=$(base_image_wanted "$release")
    if [ -z "$arches" ]; then
      log "base image: $BASE_REPO:$release present ($(cat "$STATE/rootfs/$release/arches"))"; continue
    fi
    wanted+=("$release:$arches")
  done
  [ ${#wanted[@]} -gt 0 ] || return 0
  # Only a bootstrap needs the mirror: tarballs cached in the state dir are pushed as they are. Every
  # missing tarball of every release is bootstrapped at once (the foreign ones are QEMU-bound).
  local entry
  for entry in "${wanted[@]}"; do
    release=${entry%%:*}
    for arch in ${entry#*:}; do
      [ -s "$STATE/rootfs/$release/$arch/rootfs.tar" ] && continue
      rm -f "$STATE/rootfs/$release/$arch/unavailable"
      find_mirrors
      release_epoch "$release"
      bootstrap_rootfs "$release" "$arch" & pids+=($!); jobs+=("$release/$arch")
    done
  done
  # Wait for every job (none is left running), then name each that failed; each printed why above.
  local i status
  for i in "${!pids[@]}"; do
    status=0
    wait "${pids[$i]}" || status=$?
    [ "$status" -eq 0 ] || [ "$status" -eq 3 ] || failed="$failed ${jobs[$i]}"
  done
  [ -z "$failed" ] || die "rootfs bootstrap failed for:$failed (the reason is above)"
  for entry in "${wanted[@]}"; do
    release=${entry%%:*} arches=""
    for arch in ${entry#*:}; do
      if [ -s "$STATE/rootfs/$release/$arch/rootfs.tar" ]; then arches="$arches $arch"; fi
    done
    [ -n "$arches" ] || die "no architecture of $release could be bootstrapped (the reasons are above)"
    push_base_image "$release" "${arches# }"
  done
}

push_base_image() {  # RELEASE "DEBARCH..." -> $BASE_REPO:RELEASE, one index of every architecture
  local release=$1 arches=$2 refs=() arch
  for arch in $arches; do
    local dir="$STATE/rootfs/$release/$arch" platform digest
    platform=$(docker_platform "$arch")
    printf 'FROM scratch\nADD rootfs.tar /\nCMD ["bash"]\n' >"$dir/Dockerfile"
    printf '*.log\npartial-*\nmetadata.json\n' >"$dir/.dockerignore"
    log "base image: pushing $release $platform"
    docker buildx build --quiet --provenance=false --platform "$platform" \
      --tag "$BASE_REPO:$release-$arch" --push --metadata-file "$dir/metadata.json" "$dir" >/dev/null
    digest=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["containerimage.digest"])' "$dir/metadata.json")
    refs+=("$BASE_REPO@$digest")
  done
  docker buildx imagetools create --tag "$BASE_REPO:$release" "${refs[@]}"
  echo "$arches" >"$STATE/rootfs/$release/arches"
  log "base image: $BASE_REPO:$release ($arches)"
}

step_venv() {
  local stamp="$VENV/.requirements.sha" want have=""
  want=$(sha256sum "$CHECKOUT/requirements.txt" | cut -d' ' -f1)
  if [ -e "$stamp" ]; then have=$(cat "$stamp"); fi
  if [ -x "$VENV/bin/python" ] && [ "$have" = "$want" ]; then
    log "venv: $VENV up to date"; return
  fi
  log "venv: installing requirements.txt into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$CHECKOUT/requirements.txt"
  echo "$want" >"$stamp"
}

usage() {
  echo "usage: $0 [STEP ...]   steps: packages binfmt buildx cosign dockerd registry base-images venv (default: all);" \
       "mirrors (print the Debian mirrors used); registry-prune (drop earlier test runs' images)" >&2
  exit 2
}

steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(packages binfmt buildx cosign dockerd registry base-images venv)
for STEP in "${steps[@]}"; do
  case "$STEP" in
    packages) step_packages ;; binfmt) step_binfmt ;; buildx) step_buildx ;; cosign) step_cosign ;;
    dockerd) step_dockerd ;;
    registry) step_registry ;; base-images) step_base_images ;; venv) step_venv ;; mirrors) step_mirrors ;;
    registry-prune) step_registry_prune ;;
    *) usage ;;
  esac
done
STEP=finish
[ $# -gt 0 ] || log "done: engine, buildx, QEMU, registry $REGISTRY_ADDR and $BASE_REPO:{${BASE_RELEASES// /,}} are ready"
