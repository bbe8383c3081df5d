#!/usr/bin/env bash
# Proves deployment.yaml deploys and a worker executes a run: starts a throw-away local Prefect
# server, creates the pools, deploys every deployment, runs `benchmark` on the cpu-less `gpu`
# pool with a one-shot worker, and checks that the leaderboard got rows. Offline, ~1-2 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-$PWD/.venv/bin}
WORK=$(mktemp -d)
PORT=${PORT:-4299}
export PREFECT_HOME=$WORK/prefect PREFECT_API_URL=http://127.0.0.1:$PORT/api SYNBENCH_HOME=$PWD
export PREFECT_SERVER_ANALYTICS_ENABLED=false PREFECT_LOGGING_LEVEL=WARNING
mkdir -p "$PREFECT_HOME"
"$BIN/prefect" server start --host 127.0.0.1 --port "$PORT" >"$WORK/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 60); do curl -sf "$PREFECT_API_URL/health" >/dev/null && break; sleep 1; done
"$BIN/prefect" work-pool create gpu --type process >/dev/null
"$BIN/prefect" work-pool create cpu --type process >/dev/null
"$BIN/prefect" --no-prompt deploy --prefect-file deployment.yaml --all
"$BIN/prefect" deployment ls
ROOT=$WORK/root
"$BIN/prefect" deployment run 'synbench-benchmark/benchmark' \
  -p model_ref=identity:3x4x4 -p spec=demo -p root="$ROOT" -p device=cpu
SYNBENCH_ALLOWED_PATHS=$WORK "$BIN/prefect" worker start --pool gpu --run-once  # the worker may write only there
"$BIN/prefect" flow-run ls --limit 3
ROWS=$("$BIN/synbench" leaderboard --root "$ROOT" --format json | "$BIN/python" -c "import json,sys; print(len(json.load(sys.stdin)))")
echo "leaderboard rows published by the worker's run: $ROWS"
test "$ROWS" -gt 0
"$BIN/python" - <<'PY'
import yaml
schedules = [d.get("schedules") for d in yaml.safe_load(open("deployment.yaml"))["deployments"]]
assert any(s and s[0]["cron"] for s in schedules), "no cron schedule"
print("cron schedule present:", [s[0]["cron"] for s in schedules if s][0])
PY
