# shellcheck shell=sh
# Sourced by platform.sh (cook and build): how parallel compiles share the build daemon's cores, either
# compile slots (COMPILE_SLOTS, with the jobserver off) or one jobserver (COMPILE_TOKENS).
# Entry points: compile_tokens (prints the token count), take_compile_slot TOKENS, join_jobserver TOKENS
# and leave_jobserver. The jobserver's state between join_jobserver and leave_jobserver (and its js_*
# helpers) is in three variables, set by join_jobserver: js (its directory), me (this build's file in it),
# tokens (how many there are).

# COMPILE_SLOTS (default 1; 0 = no limit): wait for one of that many lock slots in the shared cache
# before compiling, so parallel arches (and other projects) on one daemon do not oversubscribe its
# cores. Taken after the target-dir lock, in that order everywhere, so two builds cannot deadlock.
# Not used when the jobserver (COMPILE_TOKENS) is on.
take_compile_slot() {
  [ "${1:-0}" = 0 ] || return 0
  slots=${COMPILE_SLOTS:-1}
  cache=${CARGO_SHARED_CACHE:-}
  case $slots in ''|*[!0-9]*) die "COMPILE_SLOTS must be a whole number, not '$slots'" ;; esac
  [ "$slots" -gt 0 ] && [ -n "$cache" ] && command -v flock >/dev/null 2>&1 || return 0
  start=$(date +%s.%N) said=0
  while :; do
    i=0
    while [ "$i" -lt "$slots" ]; do
      exec 8>"$cache/.crossdock-compile-slot-$i"
      # With one slot, the second try blocks on the lock (woken the moment it is free); with more, poll.
      if [ "$said" = 1 ] && [ "$slots" = 1 ]; then flock 8; else flock -n 8; fi && {
        waited=$(seconds_since "$start")
        [ "$said" = 0 ] || echo "platform.sh: got compile slot $i after ${waited}s" >&2
        echo "platform.sh: waited ${waited}s for a compile slot ($slots in all)" >&2
        return 0
      }
      exec 8>&-
      i=$((i + 1))
    done
    [ "$said" = 1 ] || echo "platform.sh: waiting for one of $slots compile slot(s) (COMPILE_SLOTS)" >&2
    said=1
    [ "$slots" = 1 ] || sleep 0.2
  done
}

# COMPILE_TOKENS (0 = off, the default; auto = the build machine's cores; N): one GNU make jobserver per
# build daemon, shared by every cargo of every arch and project, so that all compiles together run at most
# that many jobs (rustc processes, build scripts, rustc's codegen threads) and an idle core is taken by
# whichever compile has work. cargo and rustc are jobserver clients: CARGO_MAKEFLAGS points them at a named
# pipe in the shared cache mount that holds one byte per token. Every build takes one token itself before
# cargo starts (cargo's implicit token: it runs one job without asking) and gives it back after; cargo takes
# and returns the others per job. State, in $CARGO_SHARED_CACHE/.crossdock-jobserver:
#   door.lock    held exclusively, briefly, around every change below (never while cargo runs)
#   fifo         the pipe. A pipe nobody holds open loses its bytes: every build in the jobserver keeps it
#                open (fd 7) from join to leave
#   active       every build in the jobserver holds a shared lock on it: free means nobody is in, and the
#                next build fills the pipe afresh
#   builds/<id>  one per build, locked by it (and by cargo, rustc and build scripts, which inherit the
#                descriptor) for its whole life, saying "waiting" or "holding": a free lock means the build
#                is dead. A dead holder's own token is given back, and since its cargo may have taken more
#                with it, "lost" is noted: the next time no live build holds a token, every token must be in
#                the pipe, so the pipe is emptied and filled again
# A waiting build takes its token only under the door lock (polling every JOBSERVER_POLL seconds), so the
# door's holder knows exactly who holds tokens.
compile_tokens() {
  case ${COMPILE_TOKENS:-0} in
    auto) nproc ;;
    ''|*[!0-9]*) die "COMPILE_TOKENS must be auto or a whole number, not '$COMPILE_TOKENS'" ;;
    *) echo "${COMPILE_TOKENS:-0}" | sed 's/^0*\(.\)/\1/' ;;
  esac
}

js_lock() { exec 5>"$js/door.lock" && flock -x 5; }
js_unlock() { flock -u 5; exec 5>&-; }

# Under the door lock: empty the pipe (nobody else reads it now) and put $tokens tokens in.
js_fill() {
  while [ -n "$(dd if="$js/fifo" iflag=nonblock bs=4096 count=1 2>/dev/null | head -c 1)" ]; do :; done
  head -c "$tokens" /dev/zero | tr '\0' + >&7
  rm -f "$js/lost"
}

# Under the door lock: reap dead builds, count the live holders, and refill the pipe when tokens may have
# been lost and nobody holds one.
js_settle() {
  holders=0
  for f in "$js"/builds/*; do
    [ -f "$f" ] || continue
    if flock -n -x "$f" true; then  # nobody holds its lock: the build is dead
      if [ "$(cat "$f")" = holding ]; then
        printf + >&7
        echo "platform.sh: gave back the compile token of a build that died holding it" >&2
      fi
      : >"$js/lost"  # (a build killed as it took its token may have taken it along)
      rm -f "$f"
    elif [ "$(cat "$f")" = holding ]; then
      holders=$((holders + 1))
    fi
  done
  if [ "$holders" = 0 ] && [ -f "$js/lost" ]; then
    echo "platform.sh: no build holds a compile token: the jobserver starts again with $tokens" >&2
    js_fill
  fi
}

# join_jobserver TOKENS: join the jobserver of TOKENS tokens (compile_tokens) and take this build's own
# token (returns 1 when there are none or no shared cache); exports CARGO_MAKEFLAGS for cargo; sets js, me
# and tokens (above).
join_jobserver() {
  tokens=${1:-0}
  [ "$tokens" -gt 0 ] && [ -n "${CARGO_SHARED_CACHE:-}" ] || return 1
  command -v flock >/dev/null 2>&1 || die "COMPILE_TOKENS needs flock (util-linux) in the builder image"
  js=$CARGO_SHARED_CACHE/.crossdock-jobserver
  mkdir -p "$js/builds"
  js_lock
  [ -p "$js/fifo" ] || { rm -f "$js/fifo"; mkfifo -m 666 "$js/fifo"; }
  exec 7<>"$js/fifo"  # read-write: never blocks, and keeps the pipe's bytes alive while this build is in
  exec 4>"$js/active"
  if flock -n -x 4; then  # nobody else is in: forget the dead, fill the pipe
    rm -f "$js"/builds/*
    js_fill
  fi
  flock -s 4
  me="$js/builds/$(cat /proc/sys/kernel/random/uuid)"
  exec 3>"$me"
  flock -x 3
  echo waiting >"$me"
  js_unlock
  trap leave_jobserver EXIT
  start=$(date +%s.%N) said=0
  while :; do
    js_lock
    js_settle
    if [ -n "$(dd if="$js/fifo" iflag=nonblock bs=1 count=1 2>/dev/null)" ]; then
      echo holding >"$me"
      js_unlock
      break
    fi
    js_unlock
    [ "$said" = 1 ] || echo "platform.sh: waiting for a compile token ($tokens in all, COMPILE_TOKENS)" >&2
    said=1
    sleep "${JOBSERVER_POLL:-0.5}"
  done
  echo "platform.sh: waited $(seconds_since "$start")s for a compile token ($tokens in all)" >&2
  export CARGO_MAKEFLAGS="-j --jobserver-auth=fifo:$js/fifo"
  unset MAKEFLAGS MFLAGS
}

# Give this build's own token back and leave (cargo has given back the ones it took).
leave_jobserver() {
  [ -n "${me:-}" ] || return 0
  js_lock
  rm -f "$me"
  exec 3>&-
  printf + >&7
  exec 7>&- 4>&-
  js_unlock
  me=""
  unset CARGO_MAKEFLAGS
}
