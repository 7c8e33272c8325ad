#!/bin/sh
# crossdock's per-architecture build helper. It runs in the native (BUILDPLATFORM) stages of
# docker/Dockerfile and maps BuildKit's TARGETARCH + TARGETVARIANT to everything a Rust cross build
# needs. It mirrors the build-side columns of tasks/core/platforms.py; tests/test_platform_sh.py runs it for
# every row of that table (plain sh, no Docker) and compares.
#
#   platform.sh env        print KEY=VALUE lines for the target (what the other commands use)
#   platform.sh toolchain  install the host Rust toolchain (Debian flavour: rustc-web, cargo-web)
#   platform.sh install    install what the target needs (cross gcc, libc, Rust std for the target)
#   platform.sh deps       the project's build tools (host) and build packages (target architecture)
#   platform.sh install-all, deps-all: install and deps for every platform of TARGETS (a joint compile)
#   platform.sh cook       compile the recipe tree in the working directory (the dependency layers) into
#                          CARGO_TARGET_DIR; a failure leaves the rest to `build`; COOK_WORKSPACE=0: nothing
#   platform.sh build      cargo build --release for the target and copy the binary to $OUT_DIR (a target
#                          dir that never built starts as a copy of $COOKED_DIR, the cooked layers')
#                          With TARGETS ("amd64 arm64 arm/v7"), cook and build run one cargo for all of
#                          them (build scripts' and proc-macros' units compiled once), the binaries in
#                          $OUT_DIR/<arch><variant>/, unless the targets' resolved features differ
#   platform.sh rootfs     the runtime's root filesystem for $RUNTIME (slim|minimal|static) in $ROOTFS:
#                          users, runtime packages (target .debs unpacked natively), CA bundle, dpkg status
#   platform.sh sbom       the SBOM's inputs in $SBOM_DIR: cargo metadata for the target, Cargo.lock,
#                          rustc -vV, and the runtime's dpkg status (already copied to $SBOM_DIR/dpkg/)
#
# Inputs (environment): TARGETARCH, TARGETVARIANT (from BuildKit), BUILDARCH (optional: the build
# machine's TARGETARCH-style arch), RUST_FLAVOUR (rustup | debian; default: rustup when `rustup` is on
# PATH, else debian), and for `build`: BIN, PACKAGE (optional), OUT_DIR (default /out),
# CARGO_PROFILE (default release); for `cook` and `build`: CARGO_SHARED_CACHE, COMPILE_SLOTS,
# COMPILE_TOKENS (see take_compile_slot and join_jobserver).
# Unknown TARGETARCH/TARGETVARIANT: exit 1 with a message naming the supported ones.
set -eu

die() { echo "platform.sh: error: $*" >&2; exit 1; }
warn() { echo "platform.sh: warning: $*" >&2; }

# Seconds since $1 (a `date +%s.%N`), one decimal.
seconds_since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

# Beside this file: the source dating and the sharing of the cores between compiles.
lib_dir=$(dirname "$0")
# shellcheck source=docker/sources.sh
. "$lib_dir/sources.sh"
# shellcheck source=docker/jobserver.sh
. "$lib_dir/jobserver.sh"

flavour() {
  if [ -n "${RUST_FLAVOUR:-}" ]; then
    case "$RUST_FLAVOUR" in rustup|debian) echo "$RUST_FLAVOUR" ;; *) die "RUST_FLAVOUR must be rustup or debian, not '$RUST_FLAVOUR'" ;; esac
  elif command -v rustup >/dev/null 2>&1; then echo rustup
  else echo debian
  fi
}

# Sets RUST_TARGET DEBIAN_ARCH GNU_TYPE (MULTIARCH, DEBIAN_REFUSAL) for TARGETARCH/TARGETVARIANT.
map_target() {
  arch=${TARGETARCH:-}
  variant=${TARGETVARIANT:-}
  DEBIAN_REFUSAL=""
  MULTIARCH=""
  case "$arch/$variant" in
    amd64/)        RUST_TARGET=x86_64-unknown-linux-gnu;      DEBIAN_ARCH=amd64;   GNU_TYPE=x86_64-linux-gnu ;;
    arm64/|arm64/v8) RUST_TARGET=aarch64-unknown-linux-gnu;   DEBIAN_ARCH=arm64;   GNU_TYPE=aarch64-linux-gnu ;;
    arm/|arm/v7)   RUST_TARGET=armv7-unknown-linux-gnueabihf; DEBIAN_ARCH=armhf;   GNU_TYPE=arm-linux-gnueabihf ;;
    arm/v5)        RUST_TARGET=armv5te-unknown-linux-gnueabi; DEBIAN_ARCH=armel;   GNU_TYPE=arm-linux-gnueabi ;;
    # Raspberry Pi OS's ARMv6 hard float: rustup only (Debian's armhf is ARMv7), refused in compute.
    arm/v6)        RUST_TARGET=arm-unknown-linux-gnueabihf;   DEBIAN_ARCH=armhf;   GNU_TYPE=arm-linux-gnueabihf
                   DEBIAN_REFUSAL="Debian has no ARMv6 hard-float port (its armhf is ARMv7): build arm/v6 with a rustup builder image and an ARMv6 C cross toolchain, or build arm/v5 (armel), which also runs on ARMv6 boards" ;;
    386/)          RUST_TARGET=i686-unknown-linux-gnu;        DEBIAN_ARCH=i386;    GNU_TYPE=i686-linux-gnu
                   MULTIARCH=i386-linux-gnu ;;
    ppc64le/)      RUST_TARGET=powerpc64le-unknown-linux-gnu; DEBIAN_ARCH=ppc64el; GNU_TYPE=powerpc64le-linux-gnu ;;
    s390x/)        RUST_TARGET=s390x-unknown-linux-gnu;       DEBIAN_ARCH=s390x;   GNU_TYPE=s390x-linux-gnu ;;
    riscv64/)      RUST_TARGET=riscv64gc-unknown-linux-gnu;   DEBIAN_ARCH=riscv64; GNU_TYPE=riscv64-linux-gnu ;;
    *) die "unsupported target platform TARGETARCH='$arch' TARGETVARIANT='$variant'. Supported: amd64, arm64, arm/v7, arm/v5, arm/v6, 386, ppc64le, s390x, riscv64" ;;
  esac
}

# Debian architecture of the build machine.
build_debian_arch() {
  if [ -n "${BUILDARCH:-}" ]; then
    case "$BUILDARCH" in
      amd64) echo amd64 ;; arm64) echo arm64 ;; arm) echo armhf ;; 386) echo i386 ;;
      ppc64le) echo ppc64el ;; s390x) echo s390x ;; riscv64) echo riscv64 ;;
      *) die "unsupported build platform BUILDARCH='$BUILDARCH'" ;;
    esac
  elif command -v dpkg >/dev/null 2>&1; then dpkg --print-architecture
  else die "cannot tell the build architecture: set BUILDARCH"
  fi
}

compute() {
  map_target
  FLAVOUR=$(flavour)
  if [ "$FLAVOUR" = debian ] && [ -n "$DEBIAN_REFUSAL" ]; then die "$arch/$variant: $DEBIAN_REFUSAL"; fi
  BUILD_DEBIAN_ARCH=$(build_debian_arch)
  LINKER=$GNU_TYPE-gcc
  MULTIARCH=${MULTIARCH:-$GNU_TYPE}
  triple_env=$(echo "$RUST_TARGET" | tr 'a-z-' 'A-Z_')
  triple_cc=$(echo "$RUST_TARGET" | tr '-' '_')
  if [ "$DEBIAN_ARCH" = "$BUILD_DEBIAN_ARCH" ]; then
    NATIVE=1
    PACKAGES="gcc libc6-dev"
  else
    NATIVE=0
    PACKAGES="gcc-$(echo "$GNU_TYPE" | tr '_' '-') libc6-dev-$DEBIAN_ARCH-cross"
  fi
  if [ "$FLAVOUR" = debian ]; then
    PACKAGES="$PACKAGES libstd-rust-web-dev:$DEBIAN_ARCH"
  fi
}

# The target's environment, one NAME=VALUE line each on stdout (after compute): what `env` prints and what
# cargo_setup exports for every compile, so the lines a test reads are the ones a build uses.
target_env() {
  echo "RUST_FLAVOUR=$FLAVOUR"
  echo "RUST_TARGET=$RUST_TARGET"
  echo "DEBIAN_ARCH=$DEBIAN_ARCH"
  echo "BUILD_DEBIAN_ARCH=$BUILD_DEBIAN_ARCH"
  echo "GNU_TYPE=$GNU_TYPE"
  echo "NATIVE=$NATIVE"
  echo "PACKAGES=$PACKAGES"
  echo "CARGO_TARGET_${triple_env}_LINKER=$LINKER"
  echo "CC_${triple_cc}=$LINKER"
  echo "CXX_${triple_cc}=$GNU_TYPE-g++"
  echo "AR_${triple_cc}=$GNU_TYPE-ar"
  echo "PKG_CONFIG_PATH_${triple_cc}=/usr/lib/$MULTIARCH/pkgconfig:/usr/share/pkgconfig"
  echo "PKG_CONFIG_LIBDIR_${triple_cc}=/usr/lib/$MULTIARCH/pkgconfig:/usr/share/pkgconfig"
  echo "BINDGEN_EXTRA_CLANG_ARGS_${triple_cc}=--sysroot=/usr/$GNU_TYPE -I/usr/include/$MULTIARCH -I/usr/include"
  echo "PKG_CONFIG_ALLOW_CROSS=1"
  if [ "${LINKAGE:-dynamic}" = static ]; then
    # glibc linked in statically (Rust's crt-static on the -gnu targets); C libraries found through
    # pkg-config are linked statically too. Build scripts and proc macros (host) stay dynamic.
    echo "CARGO_TARGET_${triple_env}_RUSTFLAGS=-C target-feature=+crt-static"
    echo "PKG_CONFIG_ALL_STATIC=1"
    echo "OPENSSL_STATIC=1"
  fi
  if [ "$FLAVOUR" = rustup ]; then echo "RUSTUP_TARGET=$RUST_TARGET"; fi
}

cmd_env() {
  compute
  target_env
}

apt_update() {
  # A mirror may serve a stale index for one architecture (seen on this project's machines for
  # bookworm-security armhf): go on with what was fetched; a missing package then fails by name.
  apt-get update -qq || warn "apt-get update reported errors (above); continuing with the indexes it could read"
}

apt_install() {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

cmd_toolchain() {
  FLAVOUR=$(flavour)
  if [ "$FLAVOUR" = rustup ]; then
    command -v cargo >/dev/null 2>&1 || die "rustup flavour but no cargo on PATH"
    return 0
  fi
  command -v apt-get >/dev/null 2>&1 || die "the builder image has neither rustup nor apt-get: use a rust:*-trixie image or a Debian image"
  apt_update
  apt_install ca-certificates rustc-web cargo-web
}

# The versions apt offers for a package[:arch], newest first.
versions() { apt-cache madison "$1" | awk -F'|' '{gsub(/ /, "", $2); print $2}'; }

# Highest version of $1 (a package[:arch]) that also exists for rustc-web.
common_rust_version() {
  host_versions=$(versions rustc-web)
  for v in $(versions "$1"); do
    if echo "$host_versions" | grep -qx "$v"; then echo "$v"; return 0; fi
  done
  return 1
}

# Unpack .debs (not install them) into the builder's /. --keep-directory-symlink: a package's ./lib goes
# through the builder's /lib -> usr/lib symlink (merged /usr) instead of replacing it with a directory,
# which would break every program (dpkg -x does that).
unpack_into_builder() {
  for deb in "$@"; do dpkg-deb --fsys-tarfile "$deb" | tar -x -C / --keep-directory-symlink; done
}

cmd_install() {
  compute
  if [ "$FLAVOUR" = rustup ]; then
    rustup target add "$RUST_TARGET"
    if [ "$NATIVE" = 0 ] || ! command -v "$LINKER" >/dev/null 2>&1; then
      apt_update
      # shellcheck disable=SC2086
      apt_install $PACKAGES
    fi
    return 0
  fi
  have=$(dpkg-query -W -f='${Version}' rustc-web 2>/dev/null) || die "rustc-web is not installed: run 'platform.sh toolchain' first"
  if [ "$NATIVE" = 1 ]; then
    apt_update
    apt_install gcc libc6-dev
    return 0
  fi
  # apt must read the target architecture's index to fetch its Rust std...
  dpkg --add-architecture "$DEBIAN_ARCH"
  apt_update
  std="libstd-rust-web-dev:$DEBIAN_ARCH"
  if versions "$std" | grep -qx "$have"; then
    v=$have
  else
    v=$(common_rust_version "$std") || die "no version of $std matches a rustc-web version the archive offers"
    warn "$std $have is not available (stale index for $DEBIAN_ARCH?); this target is built with Rust $v"
    apt_install --allow-downgrades "rustc-web=$v" "cargo-web=$v" "libstd-rust-web-dev=$v"
  fi
  # shellcheck disable=SC2086
  apt_install "gcc-$(echo "$GNU_TYPE" | tr '_' '-')" "libc6-dev-$DEBIAN_ARCH-cross"
  # ...but the std itself is unpacked, not installed: the rlibs under /usr/lib/rustlib/<triple> are all
  # rustc needs, and a multiarch install would drag in foreign copies of libc6, liblzma5, ... whose
  # versions must match the host's exactly (one stale index and apt gives up).
  runtime=$(apt-cache show "$std=$v" | sed -n 's/^Depends: .*\(libstd-rust-web-[0-9.]*\) (=.*/\1/p' | head -n 1)
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download -qq "$std=$v" ${runtime:+"$runtime:$DEBIAN_ARCH=$v"})
  unpack_into_builder "$tmp"/*.deb
  rm -rf "$tmp"
  [ -d "/usr/lib/rustlib/$RUST_TARGET/lib" ] || die "$std did not provide /usr/lib/rustlib/$RUST_TARGET"
}

# CARGO_SHARED_CACHE (a cache mount shared by every build): link cargo's downloads and its package-cache
# locks into CARGO_HOME, so parallel builds share them under cargo's own locking; the rest of
# CARGO_HOME (config.toml, credentials.toml, bin/) stays private to this build.
share_cargo_downloads() {
  cache=${CARGO_SHARED_CACHE:-}
  [ -n "$cache" ] || return 0
  home=${CARGO_HOME:-$HOME/.cargo}
  mkdir -p "$home" "$cache/registry" "$cache/git"
  for name in registry git .package-cache .package-cache-mutate; do
    rm -rf "${home:?}/$name"
    ln -s "$cache/$name" "$home/$name"
  done
}

# The compile's environment for `cook` and `build` (target_env's lines, the project's build-env, cargo's
# shared downloads), so the cooked layers' artifacts carry the fingerprints the build expects. With TARGETS
# (a joint compile: "amd64 arm64 arm/v7"), every target's lines: they name their triple, so one cargo
# compiles for all of them. Sets (for the functions below): profile, rust_targets (the triples),
# linkers, target_dir (CARGO_TARGET_DIR, created) and tokens (compile_tokens).
cargo_setup() {
  : "${BIN:?platform.sh: BIN (the binary name) is required}"
  profile=${CARGO_PROFILE:-release}
  rust_targets="" linkers=""
  for t in ${TARGETS:-"$TARGETARCH/${TARGETVARIANT:-}"}; do
    set_target "$t"
    compute
    env_lines=$(target_env)
    while IFS= read -r assignment; do
      export "${assignment?}"
    done <<EOF_ENV
$env_lines
EOF_ENV
    rust_targets="${rust_targets:+$rust_targets }$RUST_TARGET" linkers="${linkers:+$linkers,}$LINKER"
  done
  # The project's build-env (NAME=VALUE lines): for cargo and its build scripts only.
  export_lines "${BUILD_ENV_FILE:-/usr/local/share/crossdock/build-env}"
  private_sources
  target_dir=${CARGO_TARGET_DIR:-target}
  mkdir -p "$target_dir"
  share_cargo_downloads
  tokens=$(compile_tokens) || exit 1
}

# set_target PLATFORM: TARGETARCH and TARGETVARIANT of one of TARGETS' platforms (arm/v7 -> arm, v7).
set_target() {
  TARGETARCH=${1%%/*}
  case $1 in */*) TARGETVARIANT=${1#*/} ;; *) TARGETVARIANT="" ;; esac
}

# for_each_target COMMAND: COMMAND for each platform of TARGETS (the joint compile's stages), in a subshell
# each, with its TARGETARCH and TARGETVARIANT.
for_each_target() {
  [ -n "${TARGETS:-}" ] || die "TARGETS (the platforms of a joint compile, e.g. 'amd64 arm64 arm/v7') is required"
  for t in $TARGETS; do
    (set_target "$t" && export TARGETARCH TARGETVARIANT && "$@") || exit $?
  done
}

# Exports each NAME=VALUE line of a file (none when it is absent or empty); blank lines are skipped.
export_lines() {
  [ -s "$1" ] || return 0
  while IFS= read -r assignment; do
    [ -n "$assignment" ] && export "${assignment?}"
  done <"$1"
  return 0
}

# Private sources, as crossdock hands them to the compile steps (BuildKit secrets and the SSH agent
# forward, never build arguments, so no layer, cache key or provenance holds them): registry tokens
# (NAME=VALUE lines, cargo's CARGO_REGISTRIES_<NAME>_TOKEN) exported for cargo's process only; for git
# over SSH (SSH_AUTH_SOCK set by `RUN --mount=type=ssh`) the known hosts, checked strictly, through git.
private_sources() {
  credentials=${CARGO_CREDENTIALS_FILE:-/run/secrets/cargo-credentials}
  if [ -s "$credentials" ]; then
    # cargo's own provider of tokens from CARGO_REGISTRIES_<NAME>_TOKEN (cargo refuses an authenticated
    # registry with no provider configured; a credential file or keyring is no part of a build).
    export CARGO_REGISTRY_GLOBAL_CREDENTIAL_PROVIDERS=cargo:token
    export_lines "$credentials"
  fi
  # git's credential store for HTTPS git dependencies, through the git CLI (configured by environment:
  # no file of CARGO_HOME or HOME changes).
  git_credentials=${GIT_CREDENTIALS_FILE:-/run/secrets/git-credentials}
  if [ -s "$git_credentials" ]; then
    export CARGO_NET_GIT_FETCH_WITH_CLI=true GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=credential.helper
    export GIT_CONFIG_VALUE_0="store --file=$git_credentials" GIT_TERMINAL_PROMPT=0
  fi
  known_hosts=${SSH_KNOWN_HOSTS_FILE:-/run/secrets/ssh-known-hosts}
  if [ -n "${SSH_AUTH_SOCK:-}" ] && [ -s "$known_hosts" ]; then
    export CARGO_NET_GIT_FETCH_WITH_CLI=true
    export GIT_SSH_COMMAND="ssh -o UserKnownHostsFile=$known_hosts -o StrictHostKeyChecking=yes -o BatchMode=yes"
  fi
  return 0
}

# One build at a time per target dir (two builds of the same project and arch may run at once): the
# source record and the artifacts must describe the same build. Reads target_dir (cargo_setup).
lock_target_dir() {
  if command -v flock >/dev/null 2>&1; then exec 9>"$target_dir/.crossdock.lock" && flock 9; fi
}

# The binaries to build, one per line on stdout: BIN, then BINS (comma-separated).
bin_names() { echo "$BIN,${BINS:-}" | tr ',' '\n' | grep -v '^$' || :; }

# cargo's arguments for a compile of the binaries (one --target per triple of $1), on stdout, one word each
# (no argument has a space: profile, binary, package and feature names, triples).
cargo_args() {
  printf '%s' "build --profile $profile"
  for t in $1; do printf ' %s' "--target $t"; done
  for name in $(bin_names); do printf ' %s' "--bin $name"; done
  if [ -n "${PACKAGE:-}" ]; then printf ' %s' "--package $PACKAGE"; fi
  if [ -n "${CARGO_FEATURES:-}" ]; then printf ' %s' "$CARGO_FEATURES"; fi
  if [ -f Cargo.lock ]; then printf ' %s' --locked; fi
  if [ -n "${KEEP_GOING:-}" ]; then printf ' %s' --keep-going; fi
  echo
}

# unit_keys TRIPLES: every unit cargo would compile for those targets, one line each (package, target
# kind and name, platform (null: the build machine's), mode, features), from cargo's unit graph
# (`--unit-graph`, read with RUSTC_BOOTSTRAP=1: no compile, no build script runs).
unit_keys() {
  # shellcheck disable=SC2046  # cargo_args' words
  RUSTC_BOOTSTRAP=1 cargo $(cargo_args "$1") -Z unstable-options --unit-graph | perl -ne '
    while (/\{"pkg_id":"([^"]*)","target":\{"kind":\[([^\]]*)\][^}]*?"name":"([^"]*)".*?"platform":(null|"[^"]*"),"mode":"([^"]*)","features":\[([^\]]*)\]/g) {
      print "$1 $2 $3 $4 $5 [$6]\n" }' | LC_ALL=C sort -u
}

# joint_features: with several targets, whether one cargo for all of them compiles what one cargo per
# target would. cargo unifies the features of a dependency across the targets it builds together (a
# feature one target's [target.'cfg(...)'.dependencies] turns on reaches the others), so each target's
# units must all be in the joint unit graph, features included. Prints why not on stdout (returns 1).
joint_features() {
  # shellcheck disable=SC2086  # the triples, one word each
  set -- $rust_targets
  [ "$#" -gt 1 ] || return 0
  units="$target_dir/.crossdock-joint-units"
  unit_keys "$rust_targets" >"$units" || { echo "cargo could not list the units of a joint build (cargo --unit-graph failed: above)"; return 1; }
  for t in $rust_targets; do
    differ=$(unit_keys "$t" | LC_ALL=C comm -23 - "$units" | head -n 3) \
      || { echo "cargo could not list the units of a build for $t (above)"; return 1; }
    if [ -n "$differ" ]; then
      echo "the resolved features differ by target: $t alone gets units a joint build would not (cargo unifies features across the targets it builds together): $(echo "$differ" | tr '\n' ';')"
      return 1
    fi
  done
  rm -f "$units"
}

# compile LABEL RECORD: cargo build of the binaries for every target of rust_targets (profile, package,
# features, lock file as configured; reads profile, target_dir and tokens from cargo_setup) with a jobserver
# token, then the sources' RECORD updated by its outcome; cargo's messages (JSON) kept in the target dir,
# from which the units it compiled are counted. Sets compiled: cargo's exit status (the function itself
# returns 0, so `set -e` still holds inside it).
# The line it prints ("platform.sh: [LABEL]cargo ... (flavour F, ...") tells crossdock the flavour used.
compile() {
  label=$1 record=$2
  args=$(cargo_args "$rust_targets")
  join_jobserver "$tokens" || :
  echo "platform.sh: ${label}cargo $args (flavour $FLAVOUR, linker $linkers, target dir $target_dir)" >&2
  compiled=0
  messages="$target_dir/.crossdock-messages.json"
  # shellcheck disable=SC2086  # cargo_args' words
  cargo $args --message-format=json-render-diagnostics >"$messages" || compiled=$?
  leave_jobserver
  count_units "$label" "$messages"
  finish_sources "$compiled" "$record"
}

# count_units LABEL MESSAGES: what cargo compiled (not fresh), from its compiler-artifact messages: one line
# per proc-macro crate, then the units for the build machine (build scripts, proc-macros and what they
# depend on: their files are outside the targets' <triple>/ directories) and for the targets.
count_units() {
  [ -s "$2" ] || return 0
  perl -ne '
    BEGIN { ($dir, $label, $n) = @ARGV; @ARGV = ($ARGV[3]); $host = $target = 0 }
    next unless /"reason":"compiler-artifact"/ && /"fresh":false/;
    my ($kind) = /"target":\{"kind":\[([^\]]*)\]/;
    my ($name) = /"target":\{[^}]*?"name":"([^"]*)"/;
    my ($file) = /"filenames":\["([^"]*)"/;
    my $is_host = defined $file && index($file, "$dir/") == 0;
    if ($is_host) { $host++ } else { $target++ }
    print STDERR "platform.sh: ${label}compiled proc-macro $name (build machine)\n" if $kind =~ /"proc-macro"/;
    END { print STDERR "platform.sh: ${label}compiled $host unit(s) for the build machine (build scripts, proc-macros and their dependencies) and $target for $n target(s)\n" }
  ' "$target_dir/$(profile_dir)" "$label" "$(echo $rust_targets | wc -w)" "$2"
}

# The directory cargo puts a profile's artifacts in.
profile_dir() {
  if [ "$profile" = dev ] || [ "$profile" = test ]; then echo debug; else echo "$profile"; fi
}

cmd_cook() {
  cargo_setup
  if [ "${COOK_WORKSPACE:-1}" = 0 ]; then
    echo "platform.sh: cook: workspace layer off (COOK_WORKSPACE=0, no registry cache): the build step compiles the workspace's crates in its target dir" >&2
    return 0
  fi
  lock_target_dir
  if ! why=$(joint_features); then
    echo "platform.sh: cook: not compiling the targets together: $why" >&2
    return 0
  fi
  record="$target_dir/.crossdock-sources.sha256"
  restamp_changed_sources "$record" "$target_dir/${rust_targets%% *}"
  if [ -f "$record" ] && [ ! -s "$record.changed" ]; then
    echo "platform.sh: cook: no source differs from the layer below: nothing to compile" >&2
    finish_sources 0 "$record"
    return 0
  fi
  take_compile_slot "$tokens"
  compile "cook: " "$record"
  [ "$compiled" = 0 ] || warn "cook: cargo exited $compiled: this layer keeps what compiled; the build step compiles the rest"
}

# The binaries in $OUT_DIR (default /out); a joint compile (TARGETS): in $OUT_DIR/<arch><variant>/ per
# target, or, when its targets' features differ (joint_features), nothing compiled and the reason in
# $OUT_DIR/per-platform (crossdock then builds each platform with its own cargo).
cmd_build() {
  cargo_setup
  out=${OUT_DIR:-/out}
  mkdir -p "$out"
  lock_target_dir
  if ! why=$(joint_features); then
    echo "platform.sh: not compiling the targets together: $why" >&2
    echo "$why" >"$out/per-platform"
    return 0
  fi
  take_compile_slot "$tokens"
  record="$target_dir/.crossdock-sources.sha256"
  # A target dir that never built (a fresh runner, a new checkout directory) starts from the cooked layers'
  # (COOKED_DIR): the dependencies, and the workspace's other crates, are compiled there already.
  if [ ! -f "$record" ] && [ -n "${COOKED_DIR:-}" ] && [ -f "$COOKED_DIR/.crossdock-sources.sha256" ]; then
    echo "platform.sh: target dir $target_dir starts from the dependency layers ($COOKED_DIR)" >&2
    cp -a "$COOKED_DIR/." "$target_dir/"
  fi
  restamp_changed_sources "$record" "$target_dir/${rust_targets%% *}"
  if [ -z "${TARGETS:-}" ]; then
    compile "" "$record"
    [ "$compiled" = 0 ] || exit "$compiled"
    copy_binaries "$RUST_TARGET" "$out"
    return 0
  fi
  # Joint: cargo goes on with the other targets after one fails (--keep-going), and says per platform
  # which compiled (crossdock reports the others failed and builds these on their own).
  KEEP_GOING=1
  compile "" "$record"
  built=""
  [ "$compiled" = 0 ] || built=$(built_triples "$target_dir/.crossdock-messages.json")
  for t in $TARGETS; do
    set_target "$t"
    map_target
    if [ "$compiled" = 0 ]; then
      copy_binaries "$RUST_TARGET" "$out/$TARGETARCH$TARGETVARIANT"
    else
      case " $built " in
        *" $RUST_TARGET "*) echo "platform.sh: joint compile: $t compiled" >&2 ;;
        *) echo "platform.sh: joint compile: $t FAILED ($RUST_TARGET: cargo exited $compiled)" >&2 ;;
      esac
    fi
  done
  [ "$compiled" = 0 ] || exit "$compiled"
}

# built_triples MESSAGES: the targets for which cargo produced (or found fresh) every binary asked for, from
# its compiler-artifact messages, space-separated.
built_triples() {
  [ -s "$1" ] || return 0
  perl -ne '
    BEGIN { ($dir, $want) = @ARGV[0, 1]; @ARGV = ($ARGV[2]); %want = map { $_ => 1 } split /,/, $want }
    next unless /"reason":"compiler-artifact"/ && /"executable":"\Q$dir\E\/([^\/"]+)\/[^\/"]+\/([^\/"]+)"/;
    $seen{$1}{$2} = 1 if $want{$2};
    END { print join(" ", grep { keys %{$seen{$_}} == keys %want } sort keys %seen), "\n" }
  ' "$target_dir" "$(bin_names | paste -sd, -)" "$1"
}

# copy_binaries TRIPLE DIR: the binaries cargo built for TRIPLE into DIR.
copy_binaries() {
  mkdir -p "$2"
  for name in $(bin_names); do
    bin_path="$target_dir/$1/$(profile_dir)/$name"
    [ -f "$bin_path" ] || die "cargo finished but $bin_path does not exist: does the project build a binary named '$name'?"
    cp "$bin_path" "$2/$name"
  done
}

# The runtime tree $TREE (the root filesystem from `rootfs`) completed from the image spec's layout
# ($SPEC_DIR/layout, written by tasks/core/image.py; the asset files staged under $SPEC_DIR/files/) and the
# compiled binaries ($BINS_DIR), then every file dated SOURCE_DATE_EPOCH, the commit's time: the image's
# files have the same timestamps whenever and wherever they were built (BuildKit's rewrite-timestamp only
# clamps newer ones). Layout lines: user UID GID | workdir PATH | dir MODE PATH (owned by the user) |
# bin NAME PATH | link PATH TARGET | file MODE OWNER PATH (OWNER: user or root).
cmd_tree() {
  : "${TREE:?platform.sh tree: TREE (the directory to complete and date) is required}"
  spec=${SPEC_DIR:-}
  if [ -n "$spec" ] && [ -f "$spec/layout" ]; then
    owner=0:0
    while read -r kind a b c; do
      case $kind in
        user) owner="$a:$b" ;;
        workdir) [ -e "$TREE$a" ] || mkdir -p "$TREE$a" ;;
        # (chown before chmod: a chown clears the setuid and setgid bits a mode may ask for)
        dir) mkdir -p "$TREE$b" && chown "$owner" "$TREE$b" && chmod "$a" "$TREE$b" ;;
        bin) [ -f "${BINS_DIR:-/bins}/$a" ] || die "tree: the build produced no binary $a"
             [ ! -d "$TREE$b" ] || die "tree: $b is a directory of the runtime, not a place for binary $a"
             mkdir -p "$TREE$(dirname "$b")" && cp "${BINS_DIR:-/bins}/$a" "$TREE$b" && chown 0:0 "$TREE$b"
             chmod 0755 "$TREE$b" ;;
        link) mkdir -p "$TREE$(dirname "$a")" && ln -sfn "$b" "$TREE$a" ;;
        file) [ ! -d "$TREE$c" ] || die "tree: asset destination $c is a directory of the runtime"
              mkdir -p "$TREE$(dirname "$c")" && cp "$spec/files$c" "$TREE$c"
              if [ "$b" = user ]; then chown "$owner" "$TREE$c"; else chown 0:0 "$TREE$c"; fi
              chmod "$a" "$TREE$c" ;;
        '') ;;
        *) die "tree: unknown layout line '$kind $a $b $c'" ;;
      esac
    done <"$spec/layout"
  fi
  if [ -n "${SOURCE_DATE_EPOCH:-}" ] && [ "$SOURCE_DATE_EPOCH" != 0 ]; then
    find "$TREE" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
  fi
}

# Download the .debs that installing "$@" (package names, for architecture $arch) would bring onto a
# system whose dpkg status is $status, into $dest: apt's own resolver, nothing installed.
fetch_closure() {
  arch=$1 status=$2 dest=$3
  shift 3
  mkdir -p "$dest/partial"
  for pkg in "$@"; do
    apt-cache -o APT::Architecture="$arch" -o APT::Architectures::="$arch" show "$pkg:$arch" >/dev/null 2>&1 \
      || die "Debian package '$pkg' does not exist for $arch (Debian's archive as this builder image sees it): check the name, or drop it for this platform"
  done
  apt-get -qq -o Dir::State::status="$status" -o APT::Architecture="$arch" -o APT::Architectures::="$arch" \
    -o Dir::Cache::archives="$dest" -o Debug::NoLocking=1 --no-install-recommends --download-only -y \
    install "$@" >/dev/null || die "apt could not resolve $* for $arch (see above)"
}

# Make sure apt knows the target architecture's packages (idempotent; the lists live in a cache mount).
target_indexes() {
  if ! dpkg --print-foreign-architectures | grep -qx "$DEBIAN_ARCH" && [ "$NATIVE" = 0 ]; then
    dpkg --add-architecture "$DEBIAN_ARCH"
  fi
  apt_update
}

cmd_deps() {
  compute
  tools=$(echo "${BUILD_TOOLS:-}" | tr ',' ' ')
  packages=$(echo "${BUILD_PACKAGES:-}" | tr ',' ' ')
  [ -n "$tools$packages" ] || return 0
  command -v apt-get >/dev/null 2>&1 || die "build tools and build packages need a Debian builder image (apt-get)"
  target_indexes
  if [ -n "$tools" ]; then
    echo "platform.sh: build tools for $BUILD_DEBIAN_ARCH: $tools" >&2
    # shellcheck disable=SC2086
    apt_install $tools pkg-config
  fi
  [ -n "$packages" ] || return 0
  echo "platform.sh: build packages for $DEBIAN_ARCH: $packages" >&2
  if [ "$NATIVE" = 1 ]; then
    # shellcheck disable=SC2086
    apt_install $packages pkg-config
    return 0
  fi
  command -v pkg-config >/dev/null 2>&1 || apt_install pkg-config
  # Unpacked, not installed (as the Rust std above): headers, libraries and .pc files land in Debian's
  # multiarch paths (/usr/lib/<gnu-type>, /usr/include/<gnu-type>), where Debian's cross gcc and a
  # pkg-config pointed at /usr/lib/<gnu-type>/pkgconfig find them, without a foreign libc6 that must
  # match the host's version exactly.
  tmp=$(mktemp -d)
  : >"$tmp/status"
  # shellcheck disable=SC2086
  fetch_closure "$DEBIAN_ARCH" "$tmp/status" "$tmp/debs" $packages
  unpack_into_builder "$tmp"/debs/*.deb
  rm -rf "$tmp"
}

# A dpkg status stanza for an unpacked .deb, so vulnerability scanners see the package.
status_stanza() {
  dpkg-deb -f "$1" Package Source Version Architecture Maintainer Installed-Size Depends Pre-Depends \
    Multi-Arch Homepage Description | awk 'NR == 1 {print; print "Status: install ok installed"; next} {print}'
  echo
}

# Unpack a .deb into the rootfs without its documentation, and record it (status and file list). Files
# under /lib, /lib64, /bin and /sbin (bookworm's packages still ship some there) go under /usr: the
# runtime image's /lib is a symlink to usr/lib (merged /usr), which a directory in a COPY would replace.
unpack_into_rootfs() {
  deb=$1
  name=$(dpkg-deb -f "$deb" Package)
  arch=$(dpkg-deb -f "$deb" Architecture)
  unpacked=$(mktemp -d)
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$unpacked" --exclude='./usr/share/doc/*' \
    --exclude='./usr/share/man/*' --exclude='./usr/share/info/*' --exclude='./usr/share/lintian/*' \
    --exclude='./usr/share/locale/*'
  for top in lib lib64 bin sbin; do
    if [ -d "$unpacked/$top" ] && [ ! -L "$unpacked/$top" ]; then
      mkdir -p "$unpacked/usr/$top"
      cp -a "$unpacked/$top/." "$unpacked/usr/$top/"
      rm -rf "${unpacked:?}/$top"
    fi
  done
  cp -a "$unpacked/." "$ROOTFS/"
  rm -rf "$unpacked"
  status_stanza "$deb" >>"$ROOTFS/var/lib/dpkg/status"
  list="$ROOTFS/var/lib/dpkg/info/$name:$arch.list"
  [ "$arch" = all ] && list="$ROOTFS/var/lib/dpkg/info/$name.list"
  dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|; s|/$||; s|^$|/.|' >"$list"
}

# The Mozilla CA bundle from Debian's ca-certificates (what its maintainer script would generate), built
# natively: /etc/ssl/certs/ca-certificates.crt, plus the package's own files when it was asked for.
ca_bundle() {
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download -qq ca-certificates) || die "cannot download ca-certificates"
  mkdir -p "$tmp/x" "$ROOTFS/etc/ssl/certs"
  dpkg -x "$tmp"/ca-certificates_*.deb "$tmp/x"
  (cd "$tmp/x/usr/share/ca-certificates" && find . -name '*.crt' | sed 's|^\./||' | LC_ALL=C sort) >"$tmp/conf"
  while IFS= read -r crt; do cat "$tmp/x/usr/share/ca-certificates/$crt"; done <"$tmp/conf" \
    >"$ROOTFS/etc/ssl/certs/ca-certificates.crt"
  if [ "${1:-}" = package ]; then
    unpack_into_rootfs "$tmp"/ca-certificates_*.deb
    cp "$tmp/conf" "$ROOTFS/etc/ca-certificates.conf"
  fi
  echo "platform.sh: CA bundle: $(grep -c 'BEGIN CERTIFICATE' "$ROOTFS/etc/ssl/certs/ca-certificates.crt") certificates" >&2
  rm -rf "$tmp"
}

cmd_rootfs() {
  compute
  runtime=${RUNTIME:-slim}
  : "${ROOTFS:?platform.sh rootfs: ROOTFS (the directory to fill) is required}"
  base=${BASE_DIR:-/base}  # the runtime image's /etc/passwd, /etc/group and /var/lib/dpkg/status
  user=${APP_USER:-app} uid=${APP_UID:-10001} gid=${APP_GID:-${APP_UID:-10001}} home=${APP_HOME:-/home/${APP_USER:-app}}
  mkdir -p "$ROOTFS/etc" "$ROOTFS/usr/local/bin" "$ROOTFS/var/lib/dpkg/info" "$ROOTFS/tmp"
  chmod 1777 "$ROOTFS/tmp"
  if [ "$runtime" != slim ]; then  # from scratch: the merged-/usr layout Debian's paths (the ELF
    for top in lib lib64 bin sbin; do  # interpreter /lib/ld-linux-*.so) expect
      mkdir -p "$ROOTFS/usr/$top"
      ln -s "usr/$top" "$ROOTFS/$top"
    done
  fi
  cp "$base/etc/passwd" "$base/etc/group" "$ROOTFS/etc/"
  existing=$(awk -F: -v u="$user" '$1 == u { print $3 ":" $4 }' "$ROOTFS/etc/passwd")
  if [ -n "$existing" ] && [ "$existing" != "$uid:$gid" ]; then
    die "the runtime base already has a user $user with uid:gid $existing, not $uid:$gid: set uid and gid to $existing, or choose another user name"
  fi
  grep -q "^$user:" "$ROOTFS/etc/group" || echo "$user:x:$gid:" >>"$ROOTFS/etc/group"
  grep -q "^$user:" "$ROOTFS/etc/passwd" \
    || echo "$user:x:$uid:$gid:$user:$home:/usr/sbin/nologin" >>"$ROOTFS/etc/passwd"
  mkdir -p "$ROOTFS$home" && chown "$uid:$gid" "$ROOTFS$home"
  packages=$(echo "${RUNTIME_PACKAGES:-}" | tr ',' ' ')
  want_ca=0
  rest=""
  for pkg in $packages; do
    if [ "$pkg" = ca-certificates ]; then want_ca=1; else rest="$rest $pkg"; fi
  done
  case "$runtime" in
    slim)
      cp "$base/var/lib/dpkg/status" "$ROOTFS/var/lib/dpkg/status" 2>/dev/null || : >"$ROOTFS/var/lib/dpkg/status"
      status="$base/var/lib/dpkg/status" ;;
    minimal)
      : >"$ROOTFS/var/lib/dpkg/status"
      status=$(mktemp)
      rest="libc6 libgcc-s1$rest" ;;  # what a Rust binary for a -gnu target needs from Debian
    static)
      : >"$ROOTFS/var/lib/dpkg/status"
      status=$(mktemp)
      [ -z "$rest" ] || warn "runtime packages with a static binary: $rest (shared libraries a static binary cannot use; data files are fine)" ;;
    *) die "RUNTIME must be slim, minimal or static, not '$runtime'" ;;
  esac
  if [ -n "$rest" ] || [ "$want_ca" = 1 ] || [ "$runtime" != slim ]; then
    command -v apt-get >/dev/null 2>&1 || die "runtime packages and the $runtime flavour need a Debian builder image (apt-get)"
    target_indexes
  fi
  if [ -n "$rest" ]; then
    echo "platform.sh: runtime packages for $DEBIAN_ARCH ($runtime):$rest" >&2
    tmp=$(mktemp -d)
    # shellcheck disable=SC2086
    fetch_closure "$DEBIAN_ARCH" "$status" "$tmp" $rest
    for deb in "$tmp"/*.deb; do
      [ -e "$deb" ] || continue  # everything asked for is already in the runtime image
      echo "platform.sh:   $(basename "$deb")" >&2
      unpack_into_rootfs "$deb"
    done
    rm -rf "$tmp"
  fi
  if [ "$want_ca" = 1 ] && ! grep -qx 'Package: ca-certificates' "$ROOTFS/var/lib/dpkg/status"; then
    ca_bundle package
  elif [ "$runtime" != slim ]; then
    ca_bundle
  fi
  if [ "$runtime" != slim ]; then distroless_files; fi
  [ -s "$ROOTFS/var/lib/dpkg/status" ] || rm -f "$ROOTFS/var/lib/dpkg/status"
}

# What a distroless base has that programs expect, for the images built from scratch: time zone data with
# /etc/localtime at UTC (a program asking for local time finds it), /etc/nsswitch.conf (glibc's lookups read
# files, then DNS). tzdata is unpacked alone: its only dependency, debconf, is for its maintainer script.
distroless_files() {
  if ! grep -qx 'Package: tzdata' "$ROOTFS/var/lib/dpkg/status" 2>/dev/null; then
    tmp=$(mktemp -d)
    (cd "$tmp" && apt-get download -qq tzdata) || die "cannot download tzdata"
    unpack_into_rootfs "$tmp"/tzdata_*.deb
    rm -rf "$tmp"
  fi
  [ -e "$ROOTFS/etc/localtime" ] || ln -s /usr/share/zoneinfo/Etc/UTC "$ROOTFS/etc/localtime"
  [ -e "$ROOTFS/etc/timezone" ] || echo Etc/UTC >"$ROOTFS/etc/timezone"
  [ -e "$ROOTFS/etc/nsswitch.conf" ] || printf '%s\n' 'passwd: files' 'group: files' 'shadow: files' \
    'hosts: files dns' 'networks: files' 'protocols: files' 'services: files' 'ethers: files' 'rpc: files' \
    >"$ROOTFS/etc/nsswitch.conf"
}

# What the SBOM is assembled from (by crossdock, outside the build): the crates cargo resolves for this
# target (`--filter-platform`: target-specific dependencies of other platforms are left out), with the
# same sources, vendored crates and lock file as the compile; Cargo.lock for the checksums; the compiler.
cmd_sbom() {
  compute
  dir=${SBOM_DIR:-/sbom}
  mkdir -p "$dir"
  share_cargo_downloads
  set -- metadata --format-version 1 --filter-platform "$RUST_TARGET" --offline
  if [ -f Cargo.lock ]; then set -- "$@" --locked; cp Cargo.lock "$dir/Cargo.lock"; fi
  cargo "$@" >"$dir/cargo-metadata.json" || die "cargo $* failed (see above)"
  rustc -vV >"$dir/rustc.txt" 2>/dev/null || :
  echo "RUST_TARGET=$RUST_TARGET" >"$dir/target.txt"
  echo "DEBIAN_ARCH=$DEBIAN_ARCH" >>"$dir/target.txt"
  echo "PACKAGE=${PACKAGE:-}" >>"$dir/target.txt"
  mkdir -p "$dir/dpkg"
  [ -f "$dir/dpkg/status" ] || : >"$dir/dpkg/status"
  rm -rf "$dir/dpkg/info"
}

case "${1:-}" in
  env) cmd_env ;;
  toolchain) cmd_toolchain ;;
  install) cmd_install ;;
  install-all) for_each_target cmd_install ;;
  deps) cmd_deps ;;
  deps-all) for_each_target cmd_deps ;;
  cook) cmd_cook ;;
  build) cmd_build ;;
  rootfs) cmd_rootfs ;;
  tree) cmd_tree ;;
  sbom) cmd_sbom ;;
  *) echo "usage: platform.sh env|toolchain|install|install-all|deps|deps-all|cook|build|rootfs|tree|sbom" >&2; exit 2 ;;
esac
