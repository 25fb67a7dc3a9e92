#!/usr/bin/env bash
# The 224-pixel end-to-end run on a folder of JPEGs (issue 29), as a user with a trained network runs it:
#   0. Fashion-MNIST written as 256 x 256 JPEGs: ROOT/train/<class>/ (2000) and ROOT/val/<class>/ (300);
#   1. a teacher trained at 224 by `nas-prune train` (1000 images, batch 32, 8 epochs: 250 steps);
#   2. `nas-prune run --teacher` (evaluated, not trained again); its training stages use 500 of the images
#      in batches of 32 (a batch of 128 at 224 px takes ~17 s forward+backward on 2 cores: 150 gate steps
#      per ratio would take 40+ min each).
# Every step resumes after a kill; re-running continues. The run's stages.json, summary.json and log are
# copied to benchmarks/results/imagefolder_224/ as they come.
#   nice -n -5 bash benchmarks/imagefolder_224.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=runs/fashion-jpeg-small
OUT=runs/fashion-jpeg-224
RES=benchmarks/results/imagefolder_224
mkdir -p "$OUT" "$RES"
.venv/bin/python examples/image_folder/fashion_mnist_jpeg.py "$ROOT" --train 2000 --val 300
[ -f "$OUT/space-teacher.json" ] || .venv/bin/nas-prune space mobilenet_v2 --input-size 224 --num-classes 10 \
  -o "$OUT/space-teacher.json"
[ -f "$OUT/teacher-trained.pt" ] || .venv/bin/nas-prune train --space "$OUT/space-teacher.json" \
  --data "imagefolder:$ROOT" --resize 256 --train-subset 1000 --epochs 8 --batch-size 32 \
  -o "$OUT/teacher-trained.pt" | tee "$RES/teacher.json"
RUN="$OUT/run-b32"
copy() { for f in config.json stages.json summary.json; do [ -f "$RUN/$f" ] && cp "$RUN/$f" "$RES/$f"; done; true; }
trap copy EXIT
.venv/bin/nas-prune run --model mobilenet_v2 --teacher "$OUT/teacher-trained.pt" \
  --data "imagefolder:$ROOT" --input-size 224 --resize 256 --train-subset 500 \
  --gate-steps 10 --pnet-epochs 1 --n-trials 12 --distill-epochs 2 --finalists 3 --validate-n 3 --budget 0.5x \
  --batch-size 32 --out "$RUN" 2>&1 | tee -a "$RES/run.log"
