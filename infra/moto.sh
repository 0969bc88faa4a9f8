#!/usr/bin/env bash
# Starts or stops the moto server (local AWS) on 127.0.0.1:$PORT, through
# infra/moto_server.py, which gives DynamoDB requests their real atomicity,
# spares UpdateItem moto's repeated expression parsing and checking, and
# keeps SQS requests from slowing down as a queue fills.
#   infra/moto.sh start PORT   - starts it in the background (idempotent), waits until it answers
#   infra/moto.sh stop PORT    - stops the one this script started on PORT
# The venv (.venv) is created by `make venv`.
set -euo pipefail
cmd=${1:?start|stop}
port=${2:?port}
root=$(cd "$(dirname "$0")/.." && pwd)
state="$root/.local"
pidfile="$state/moto-$port.pid"
mkdir -p "$state"

answers() { curl -fsS -o /dev/null "http://127.0.0.1:$port/moto-api/" 2>/dev/null; }

case "$cmd" in
  start)
    if answers; then echo "moto already listening on 127.0.0.1:$port"; exit 0; fi
    "$root/.venv/bin/python" "$root/infra/moto_server.py" -H 127.0.0.1 -p "$port" >"$state/moto-$port.log" 2>&1 &
    echo $! >"$pidfile"
    for _ in $(seq 1 100); do
      if answers; then echo "moto listening on 127.0.0.1:$port (log: .local/moto-$port.log)"; exit 0; fi
      sleep 0.2
    done
    echo "moto did not start on port $port; see $state/moto-$port.log" >&2
    exit 1
    ;;
  stop)
    if [ -f "$pidfile" ]; then
      kill "$(cat "$pidfile")" 2>/dev/null || true
      rm -f "$pidfile"
    fi
    ;;
  *) echo "usage: $0 start|stop PORT" >&2; exit 2 ;;
esac
