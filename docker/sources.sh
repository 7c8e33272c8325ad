# shellcheck shell=sh
# Sourced by platform.sh (cook and build): the dating of the project's sources by content.
# Functions: restamp_changed_sources RECORD ARTIFACTS before cargo, finish_sources STATUS RECORD after it.
# They leave RECORD.new, RECORD.changed and RECORD.stamp.next beside the record for each other, and nothing
# in shell variables.

# cargo decides freshness of the project's own crates by mtime, but the sources a build sees come from COPY
# layers, with whatever mtimes the checkout (or a cached layer, or another runner) gave them. So every
# target dir keeps a record of the sources (sha256) of its last build, and a stamp file dated when that
# build's sources were dated. Before cargo runs, every file whose content differs from the record is dated
# now, and every other file newer than the stamp is dated far in the past (OLD_MTIME): cargo then rebuilds
# exactly the crates whose sources are not the ones their artifacts came from, whatever the checkout's
# mtimes. With no record every file is new (and, in a target dir with no artifacts, nothing needs a date).
# Vendored crates (directories with a .cargo-checksum.json) are judged by cargo by their checksum, not by
# mtime: the record holds their checksum file only, and nothing in them is touched.
OLD_MTIME=946684800  # 2000-01-01T00:00:00Z

# The files under . that can matter to cargo's mtime checks, one per line.
source_files() {
  find . -path ./target -prune -o -name .cargo-checksum.json -type f -print \
    | sed 's|/\.cargo-checksum\.json$||' | grep -vx '\.' >"$1.vendored" || :
  find . -path ./target -prune -o -type f -print | awk -v list="$1.vendored" '
    BEGIN { while ((getline d < list) > 0) skip[d] = 1 }
    /\/\.cargo-checksum\.json$/ { print; next }
    { p = $0; while (sub(/\/[^\/]*$/, "", p)) if (p in skip) next; print }'
  rm -f "$1.vendored"
}

# restamp_changed_sources RECORD ARTIFACTS: ARTIFACTS is the target dir's directory for this target triple
# (where cargo's artifacts are, if any: with none, nothing needs a date).
restamp_changed_sources() {
  record=$1 artifacts=$2
  source_files "$record" | tr '\n' '\0' | xargs -0 -r sha256sum | LC_ALL=C sort >"$record.new"
  if [ -f "$record" ]; then
    LC_ALL=C sort "$record" >"$record.old"
    LC_ALL=C comm -13 "$record.old" "$record.new" >"$record.changed"
    LC_ALL=C comm -12 "$record.old" "$record.new" | cut -c67- | tr '\n' '\0' >"$record.same"
    rm -f "$record.old"
    if [ -f "$record.stamp" ]; then
      xargs -0 -r sh -c 'find "$@" -maxdepth 0 -newer "$0" -print0' "$record.stamp" <"$record.same"
    else
      cat "$record.same"
    fi | xargs -0 -r touch -h -d "@$OLD_MTIME"
    rm -f "$record.same"
  else
    cp "$record.new" "$record.changed"
  fi
  if [ -f "$record" ] || [ -d "$artifacts" ]; then
    cut -c67- "$record.changed" | tr '\n' '\0' | xargs -0 -r touch -h
  fi
  touch "$record.stamp.next"  # every artifact of this build is newer
}

# After cargo: its exit status in $1. Success: this build's sources are the record. Failure: the files
# that changed are recorded with a hash nothing has, so the next build dates them new again.
finish_sources() {
  record=$2
  mv "$record.stamp.next" "$record.stamp"
  if [ "$1" = 0 ]; then
    if [ -f Cargo.lock ] && ! grep -q '  \./Cargo\.lock$' "$record.new"; then  # cargo wrote a lock file
      sha256sum ./Cargo.lock >>"$record.new"
      LC_ALL=C sort -o "$record.new" "$record.new"
    fi
    mv "$record.new" "$record"
  else
    { if [ -f "$record" ]; then LC_ALL=C sort "$record" | LC_ALL=C comm -12 - "$record.new"; fi
      sed 's/^[0-9a-f]*/0000000000000000000000000000000000000000000000000000000000000000/' "$record.changed"
    } | LC_ALL=C sort >"$record.next"
    mv "$record.next" "$record"
    rm -f "$record.new"
  fi
  rm -f "$record.changed"
}
