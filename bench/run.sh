#!/usr/bin/env bash
# `make bench`: EasyPay's load benchmark of the real stack on loopback (see bench/README.md).
# Needs PostgreSQL at 127.0.0.1:5432 (user postgres), Redis at 127.0.0.1:6379 (db 10 is flushed),
# the .venv from `make venv`, and wrk (installed here from Debian's packages when missing).
# bench/run.py does the work; this wrapper guarantees cleanup even if it dies hard: every pid it
# started (its own process groups) is stopped and its database dropped.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}

if [ ! -x "$PY" ]; then
  echo "bench: $PY not found: run 'make venv' first" >&2
  exit 2
fi
if ! command -v wrk >/dev/null 2>&1; then
  echo "bench: installing wrk (Debian package)" >&2
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get install -y wrk >/dev/null 2>&1 || { $SUDO apt-get update >/dev/null && $SUDO apt-get install -y wrk >/dev/null; }
fi
if [ "${BENCH_PROFILE:-0}" = "1" ] && [ ! -x .venv/bin/py-spy ]; then
  echo "bench: installing py-spy into .venv for BENCH_PROFILE=1" >&2
  .venv/bin/pip install --quiet --disable-pip-version-check py-spy
fi

STATE_DIR=$(mktemp -d /tmp/easypay-bench.XXXXXX)
cleanup() {
  local rc=$?
  if [ -f "$STATE_DIR/pids" ]; then
    while read -r pid; do
      [ -n "$pid" ] || continue
      if kill -0 -- "-$pid" 2>/dev/null; then
        kill -TERM -- "-$pid" 2>/dev/null || true
        sleep 2
        kill -KILL -- "-$pid" 2>/dev/null || true
      fi
    done <"$STATE_DIR/pids"
  fi
  if [ -f "$STATE_DIR/dbname" ] && [ "${BENCH_KEEP_DB:-0}" != "1" ]; then
    db=$(cat "$STATE_DIR/dbname")
    case "$db" in
      easypay_bench_*) "$PY" - "$db" <<'PYEOF' || true
import os, sys
import psycopg
url = os.environ.get("BENCH_PG_URL") or "postgres://postgres@127.0.0.1:5432/postgres"
with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
    conn.execute(f'DROP DATABASE IF EXISTS "{sys.argv[1]}" WITH (FORCE)')
PYEOF
        ;;
    esac
  fi
  if [ "${BENCH_KEEP_STATE:-0}" = "1" ]; then
    echo "bench: logs kept in $STATE_DIR" >&2
  else
    rm -rf "$STATE_DIR"
  fi
  exit "$rc"
}
trap cleanup EXIT

# run.py in the background so a signal to this shell is handled at once (bash defers traps until a
# foreground child ends): it is forwarded, run.py cleans up, then the EXIT trap sweeps what is left.
"$PY" bench/run.py --state-dir "$STATE_DIR" "$@" &
child=$!
trap 'kill -INT "$child" 2>/dev/null; wait "$child"; exit 130' INT
trap 'kill -TERM "$child" 2>/dev/null; wait "$child"; exit 143' TERM
wait "$child"
