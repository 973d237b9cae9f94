#!/usr/bin/env bash
# The last call of a carried training run (see scripts/carry.py), on the offline GPU machine:
# join the perceptual weights, time one step, size the run to MINUTES, train, and leave the EMA model
# (float16, in pieces under the download cap) and the logs in $OUT.
#
#   bash scripts/carry_train.sh CONFIG MINUTES [--set section.key=value ...]
#
# DEVICE (default cuda) and PRECISION (default bf16) pick where and how; WORKERS (default: cores - 2)
# DataLoader workers. The run goes to RUN_DIR (default runs/carry); a second call on the same warm
# machine resumes it. STEPS fixes run.steps instead of sizing it.
set -euo pipefail
config=${1:?usage: carry_train.sh CONFIG MINUTES [--set ...]}
minutes=${2:?usage: carry_train.sh CONFIG MINUTES [--set ...]}
shift 2
out=${OUT:?OUT must name the folder whose files come back}
device=${DEVICE:-cuda}
precision=${PRECISION:-bf16}
workers=${WORKERS:-$(( $(nproc) > 3 ? $(nproc) - 2 : 1 ))}
py=${PYTHON:-python3}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
export GENDR_PIX_CACHE=${GENDR_PIX_CACHE:-/tmp/gendr-pix-cache}
run=${RUN_DIR:-runs/carry}
sets=(--set "run.dir=$run" --set "run.device=$device" --set "run.precision=$precision" --set "run.workers=$workers"
      --set "run.stop_at=0" "$@")

shopt -s nullglob
$py scripts/carry.py unpack --into "$GENDR_PIX_CACHE" "${GENDR_PIX_CARRY_STASH:-/tmp/gendr-pix-carry}"/* .carry/*
[ "$device" = cuda ] && nvidia-smi -L

# Size the run: the schedule (warm-up, cosine) should end inside the time, so run.steps comes from one
# measured step on a fixed batch, with 20 % spare for start-up, data waits (raise WORKERS if
# log.jsonl's data_sec is well above 0), EMA and saves; run.max_minutes stops it in any case.
$py scripts/train_speed.py --config "$config" --device "$device" --precision "$precision" --steps 3 --samples 0 \
    "${sets[@]}" | tee "$out/speed.txt"
step=$(sed -n "s/^$precision: \([0-9.]*\) s per step.*/\1/p" "$out/speed.txt")
steps=${STEPS:-$($py -c "print(max(1, int($minutes * 60 * 0.8 / $step)))")}
echo "training $steps steps ($step s per step, $minutes minutes)"

$py -m gendr_pix train --config "$config" --no-progress "${sets[@]}" --set "run.steps=$steps" \
    --set "run.max_minutes=$minutes" 2>&1 | tee "$out/train.log"
last=$(sed -n 's/.*done at step \([0-9]*\);.*/\1/p' "$out/train.log")
[ "$last" -ge "$steps" ] || echo "stopped by the time limit at step $last of $steps: the schedule did not end"
$py scripts/carry.py pieces "$run/model_ema.safetensors" "$out"
cp "$run/log.jsonl" "$out/"
ls -l "$out"
