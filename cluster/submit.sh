#!/usr/bin/env bash
# Submits `nas search` to a Ray cluster as a Ray job, with this checkout as its code
# (cluster/runtime_env.yaml). Flags given here follow the defaults and so override them:
#   RAY_ADDRESS=http://HEAD:8265 cluster/submit.sh --gpus-per-worker 1 --budget 200
# The run directory is /tmp/nas-runs/JOB_ID on the head node unless --out says otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
job=${NAS_JOB_ID:-nas-$(date +%Y%m%d-%H%M%S)}
exec ray job submit --runtime-env cluster/runtime_env.yaml --submission-id "$job" -- \
  nas search --workers 4 --out "/tmp/nas-runs/$job" "$@"
