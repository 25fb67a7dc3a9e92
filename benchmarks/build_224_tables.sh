#!/usr/bin/env bash
# Build and validate the 224x224 host-CPU latency tables (1000 classes; mobilenet_v2 and resnet18;
# 1 thread, and 2 threads with THREADS="1 2"). Resumable: every step whose output exists is skipped,
# and an interrupted `nas-prune profile` resumes from its TABLE.partial.json; run the same command again.
#
#   nice -n 5 benchmarks/build_224_tables.sh            # on a quiet machine: nothing else running
#   MODELS=mobilenet_v2 THREADS="1 2" benchmarks/build_224_tables.sh
#
# Timing settings (at 224x224 compute dominates and one run takes milliseconds, not ~0.1 ms as at 32):
#   --rounds 20 --runs-per-round 5 (warmup 10): 100 timed runs per network instead of 600 at 32x32,
#   still ~0.8 s of timing per mobilenet_v2 network (0.12 s at 32) over 20 interleaved rounds with
#   the reference; 2 threads: 40 rounds (every core is in the measurement, as default_rounds says).
# Networks: 320 for mobilenet_v2 and 150 for resnet18, as the shipped 32x32 1-thread tables.
# Estimated build time, 1 thread, this 2-vCPU VM quiet (an ESTIMATE from one timing of the full
# mobilenet_v2-224, 21 ms p10 under load; MAC-proportional candidates): mobilenet_v2 ~7 min, resnet18
# ~8-10 min (its full network assumed 3-4x mobilenet_v2's), validation (60 networks each) ~1-3 min.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
MODELS=${MODELS:-"mobilenet_v2 resnet18"}
THREADS=${THREADS:-1}
export OMP_NUM_THREADS=1 NAS_PRUNE_PROGRESS=${NAS_PRUNE_PROGRESS:-1}
# the folder names the machine, as latency_tables/devvm-amd-epyc-2vcpu does (override with DIR=...)
SLUG=$("$PY" -c "
import os, re
from nas_prune.on_device import machine_info
m = machine_info()
cpu = re.sub(r'\(r\)|\(tm\)|processor|cpu|@.*', '', m['cpu_model'].lower())
cpu = '-'.join(w for w in re.split(r'[^a-z0-9]+', cpu) if w)[:24] or 'cpu'
simd = m['simd'].replace('avx512f', 'avx512')
print(f'{cpu}-{simd}', f'devvm-{cpu}-{os.cpu_count()}vcpu')")
TAG=${SLUG% *}
DIR=${DIR:-latency_tables/${SLUG#* }}
mkdir -p "$DIR" benchmarks/results
declare -A NETS=([mobilenet_v2]=320 [resnet18]=150)
for model in $MODELS; do
  for t in $THREADS; do
    suffix=$([ "$t" = 1 ] && echo 1thread || echo "${t}threads")
    rounds=$([ "$t" = 1 ] && echo 20 || echo 40)
    table="$DIR/${model}-224_${TAG}_cpu-${suffix}.json"
    space="search_spaces/${model}-224.json"
    if [ ! -f "$table" ]; then
      echo "== profiling $table (${NETS[$model]} networks, $rounds rounds x 5 runs; resumable)" >&2
      "$PY" -m nas_prune profile --space "$space" --threads "$t" --nets "${NETS[$model]}" --rounds "$rounds" \
        --runs-per-round 5 -o "$table"
    fi
    out="benchmarks/results/latency_validate_224_${model}_${suffix}.json"
    if [ ! -f "$out" ]; then
      echo "== validating $table on held-out networks (seed 1, n=60)" >&2
      "$PY" benchmarks/latency_validate.py --table "$table" --n 60 --seed 1 --out "$out"
    fi
    "$PY" -c "
import json, sys
t = json.load(open('$table')); v = json.load(open('$out'))
v = v[0] if isinstance(v, list) else v.get('results', [v])[0]
print(json.dumps({'table': '$table', 'build_seconds': t['meta'].get('build_seconds'), 'nets': t['meta']['nets'],
                  'reference_ms': round(t['reference']['ms'], 3), 'cv_within_10pct': t['model']['cv']['within_10pct'],
                  'validation_n': v.get('n'), 'within_10pct': v.get('within_10pct'), 'spearman': v.get('spearman')}))"
  done
done
