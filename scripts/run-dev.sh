#!/usr/bin/env bash
# `make run`: the Authorize.Net emulator (its state kept on disk), the beat schedule (in-process, no
# broker needed) and the web server, on embedded defaults. Stops the processes it started (by pid)
# when any of them stops or on Ctrl-C, and then exits 0 (or with the failed process's status).
set -uo pipefail
PY=${PY:-.venv/bin/python}
PORT=${PORT:-8000}
EMULATOR_PORT=${EMULATOR_PORT:-8999}
# The emulator's transactions, batches and profiles survive a restart of `make run` (delete the file
# to start the processor afresh, together with db.sqlite3).
EMULATOR_STATE=${EMULATOR_STATE:-.data/anet-emulator.sqlite3}
SCHEDULE_INTERVAL=${SCHEDULE_INTERVAL:-15}
export WEBHOOK_ALLOW_PRIVATE_URLS=${WEBHOOK_ALLOW_PRIVATE_URLS:-true}
# The app talks to the emulator started below, whatever port it was given.
export AUTHORIZE_NET_ENDPOINT=${AUTHORIZE_NET_ENDPOINT:-http://127.0.0.1:${EMULATOR_PORT}/xml/v1/request.api}
# The development SECRET_KEY warning was said once (by `make run`); not again by every process.
export EASYPAY_DEV_KEY_WARNED=1
mkdir -p "$(dirname "$EMULATOR_STATE")"

# Seconds each process gets to finish after SIGTERM (the scheduler ends the task it is running, the
# web server its requests); one still running then is named and killed, so Ctrl-C always ends.
STOP_GRACE_SECONDS=${STOP_GRACE_SECONDS:-10}

pids=()
declare -A names=()
stopping=0
stop() {
  stopping=1
  local pid ticks=0  # of 0.2 s, shared by all: the grace is for the whole stop, not per process
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null && [ "$ticks" -lt $((STOP_GRACE_SECONDS * 5)) ]; do
      sleep 0.2
      ticks=$((ticks + 1))
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "make run: the ${names[$pid]} (pid ${pid}) did not stop ${STOP_GRACE_SECONDS} s after SIGTERM; killed." >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
}
trap 'stop; echo; echo "EasyPay stopped."; exit 0' INT TERM

"$PY" manage.py anet_sandbox --port "$EMULATOR_PORT" --db "$EMULATOR_STATE" \
  --webhook-url "http://127.0.0.1:${PORT}/api/v1/webhooks/authorize-net" &
pids+=($!); names[$!]=emulator
echo "Authorize.Net emulator: http://127.0.0.1:${EMULATOR_PORT}/xml/v1/request.api (pid ${pids[-1]}, state in ${EMULATOR_STATE})"

"$PY" manage.py run_schedule --interval "$SCHEDULE_INTERVAL" &
pids+=($!); names[$!]=scheduler
echo "Schedule in-process (pid ${pids[-1]}): each entry prints when it runs (schedule: ...), then each run (ran ...)"

if [ -z "${EMAIL_URL:-}" ]; then echo "Emails sent (receipts, notices): files in var/sent-mail/; SMS: printed here"; fi
"$PY" manage.py runserver "127.0.0.1:${PORT}" --noreload &
pids+=($!); names[$!]="web server"
echo "EasyPay: http://127.0.0.1:${PORT}/  (API docs: /api/docs/, admin: /admin/, health: /health/detailed; Ctrl-C stops)"

# Whichever process ends first ends the stack: a dead scheduler is not left unnoticed.
wait -n "${pids[@]}"
status=$?
if [ "$stopping" -eq 0 ]; then
  echo "make run: a process exited (status ${status}); stopping the others." >&2
  stop
  exit "$status"
fi
