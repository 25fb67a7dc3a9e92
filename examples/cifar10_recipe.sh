#!/usr/bin/env bash
# CIFAR-10 from local files (nas-prune never downloads). Unpack cifar-10-python.tar.gz so that
# $CIFAR/cifar-10-batches-py exists, then run the whole job for resnet18 at 32x32 under 0.5x of the
# teacher's latency on this machine's CPU (1 thread). Every stage is cached in runs/cifar10: re-run
# the same command after an interrupt to resume. On a 2-core CPU this takes hours; on a GPU box raise
# --teacher-epochs (e.g. 30) and --pnet-epochs (e.g. 40) for paper-like accuracy.
set -euo pipefail
CIFAR=${CIFAR:-$HOME/data/cifar10}
nas-prune run --model resnet18 --data "cifar10:$CIFAR" --budget 0.5x --profile --threads 1 \
  --teacher-epochs 15 --gate-epochs 3 --pnet-epochs 15 --n-trials 200 --distill-epochs 15 \
  --out runs/cifar10
nas-prune report runs/cifar10 --screenshot runs/cifar10/report.png
