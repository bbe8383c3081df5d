#!/usr/bin/env bash
# Proves deployment.yaml deploys and workers on two "nodes" fill one board on object storage:
# starts a throw-away local Prefect server and an S3 API on loopback (moto's server mode), creates
# the pools, deploys every deployment, queues two `benchmark` runs into s3://synbench-bar/root, and
# starts two process workers in two different folders (sharing nothing but the S3 endpoint and the
# Prefect API), each taking one run. Checks that each worker ran one and that the board holds both
# models. Offline, ~2 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-$PWD/.venv/bin}
WORK=$(mktemp -d)
PORT=${PORT:-4299}
S3_PORT=${S3_PORT:-5299}
export PREFECT_HOME=$WORK/prefect PREFECT_API_URL=http://127.0.0.1:$PORT/api SYNBENCH_HOME=$PWD
export PREFECT_SERVER_ANALYTICS_ENABLED=false PREFECT_LOGGING_LEVEL=WARNING
export AWS_ENDPOINT_URL=http://127.0.0.1:$S3_PORT AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
export AWS_DEFAULT_REGION=us-east-1
ROOT=s3://synbench-bar/root
mkdir -p "$PREFECT_HOME"
"$BIN/prefect" server start --host 127.0.0.1 --port "$PORT" >"$WORK/server.log" 2>&1 &
SERVER=$!
"$BIN/moto_server" -H 127.0.0.1 -p "$S3_PORT" >"$WORK/s3.log" 2>&1 &
S3=$!
trap 'kill $SERVER $S3 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 60); do curl -sf "$PREFECT_API_URL/health" >/dev/null && break; sleep 1; done
for _ in $(seq 30); do curl -s "$AWS_ENDPOINT_URL" >/dev/null && break; sleep 1; done
"$BIN/python" -c "import s3fs; s3fs.S3FileSystem().mkdir('synbench-bar')"
"$BIN/prefect" work-pool create gpu --type process >/dev/null
"$BIN/prefect" work-pool create cpu --type process >/dev/null
"$BIN/prefect" --no-prompt deploy --prefect-file deployment.yaml --all
"$BIN/prefect" deployment ls
for MODEL in identity:3x4x4 noise:3x4x4; do
  "$BIN/prefect" deployment run 'synbench-benchmark/benchmark' \
    -p model_ref="$MODEL" -p spec=demo -p root="$ROOT" -p device=cpu
done
# Two nodes: own folder, own Prefect home; the worker may write only under the s3:// root.
WORKERS=()
for NODE in node-a node-b; do
  mkdir -p "$WORK/$NODE"
  (cd "$WORK/$NODE" && PREFECT_HOME=$WORK/$NODE/.prefect SYNBENCH_ALLOWED_PATHS=$ROOT PREFECT_LOGGING_LEVEL=INFO \
    "$BIN/prefect" worker start --pool gpu --name "$NODE" --limit 1 --run-once >"$WORK/$NODE.log" 2>&1) &
  WORKERS+=($!)
  sleep 2
done
wait "${WORKERS[@]}"
for NODE in node-a node-b; do
  RAN=$(grep -ci "submitting flow run" "$WORK/$NODE.log" || true)
  echo "$NODE ran $RAN flow run(s): $(grep -o "[0-9a-f]\{8\}-[0-9a-f-]\{27\}" "$WORK/$NODE.log" | sort -u | tr '\n' ' ')"
  test "$RAN" -ge 1
done
if find "$WORK/node-a" "$WORK/node-b" "$SYNBENCH_HOME" -maxdepth 2 -name 's3:*' | grep -q .; then
  echo "a local folder named s3: was written"; exit 1
fi
MODELS=$("$BIN/synbench" leaderboard --root "$ROOT" --format json | "$BIN/python" -c \
  "import json,sys; rows=json.load(sys.stdin); print(len(rows), sorted({r['model'] for r in rows}))")
echo "board on $ROOT: $MODELS"
case "$MODELS" in "48 ['identity:3x4x4', 'noise:3x4x4']") ;; *) echo "expected both models' 48 rows"; exit 1 ;; esac
"$BIN/python" - <<'PY'
import yaml
schedules = [d.get("schedules") for d in yaml.safe_load(open("deployment.yaml"))["deployments"]]
assert any(s and s[0]["cron"] for s in schedules), "no cron schedule"
print("cron schedule present:", [s[0]["cron"] for s in schedules if s][0])
PY
