#!/usr/bin/env bash
# How the bundled models are trained on one CUDA GPU within a short lease: three runs side by side
# (the still model with a noise-level input, the same without one, the video model going on from the
# bundled one), each with its own batch-making processes, a checkpoint refreshed every minute.
#
#   train/recipes/gpu.sh start DATA MINUTES   # starts the runs in the background (setsid) and returns
#   train/recipes/gpu.sh status [OUT]         # progress lines; copies the latest checkpoints to OUT
#   train/recipes/gpu.sh wait                 # until every run has written its final checkpoint
#
# DATA holds CBSD432/ and Train400/ (photos), videos/ and ped2/ (real clips for the video model).
# Runs and logs go to $RUNS (default /tmp/edge-ae-runs). The same commands run on a CPU with --device cpu.
set -u
RUNS=${RUNS:-/tmp/edge-ae-runs}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
edge_ae() { python3 -c 'import sys; from edge_runtime.cli import main; sys.argv[0] = "edge-ae"; main()' "$@"; }

start() {
    local data=$1 minutes=$2
    mkdir -p "$RUNS"
    # A copy of the tree: the runs must not see files change under them.
    rm -rf "$RUNS/src" && mkdir -p "$RUNS/src" && cp -r "$ROOT/edge_runtime" "$ROOT/train" "$ROOT/export" "$RUNS/src/"
    cd "$RUNS/src" || exit 1
    export PYTHONPATH=$RUNS/src PYTHONUNBUFFERED=1
    local still=(--preset default "$data/CBSD432" "$data/Train400" --init-from edge_runtime/models/default.onnx
                 --batch 64 --patch 128 --lr 1e-3 --max-minutes "$minutes" --threads 2 --workers 4 -y)
    echo '{"model": {"widths": [32, 64, 128], "blocks": [0, 1, 2, 1, 0], "level": true}}' > "$RUNS/level.json"
    echo '{"val_every_s": 60}' > "$RUNS/video.json"
    setsid nohup bash -c "$(declare -f edge_ae); edge_ae train ${still[*]} --config $RUNS/level.json \
        -o $RUNS/still_level.pt" > "$RUNS/still_level.log" 2>&1 < /dev/null &
    setsid nohup bash -c "$(declare -f edge_ae); edge_ae train ${still[*]} -o $RUNS/still_blind.pt" \
        > "$RUNS/still_blind.log" 2>&1 < /dev/null &
    setsid nohup bash -c "$(declare -f edge_ae); edge_ae train --family video_denoiser $data/CBSD432 $data/videos \
        $data/ped2 --init-from edge_runtime/models/video.onnx --batch 16 --lr 1e-4 --max-minutes $minutes \
        --threads 2 --workers 5 --config $RUNS/video.json -o $RUNS/video.pt -y" > "$RUNS/video.log" 2>&1 < /dev/null &
    sleep 45
    status
}

status() {
    for log in "$RUNS"/*.log; do
        echo "== $log"; grep -E "data:|warm start|validation|wrote|Error|error" "$log" | tail -4; tail -n 1 "$log"
    done
    nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader 2>/dev/null
    if [ -n "${1:-}" ]; then
        mkdir -p "$1" && cp "$RUNS"/*.pt "$1/" 2>/dev/null
        tar czf "$1/logs.tgz" -C "$RUNS" $(cd "$RUNS" && ls ./*.log ./*.json)
    fi
}

wait_all() {
    for _ in $(seq 1 120); do
        local n
        n=$(grep -l "^wrote .* after" "$RUNS"/*.log 2>/dev/null | wc -l)
        [ "$n" -ge 3 ] && return 0
        sleep 5
    done
}

case "${1:-}" in
    start) start "$2" "$3" ;;
    status) status "${2:-}" ;;
    wait) wait_all; status "${2:-}" ;;
    *) sed -n 2,13p "$0"; exit 2 ;;
esac
