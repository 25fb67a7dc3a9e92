#!/usr/bin/env bash
# The torch-free device bundle on a 64-bit ARM userland, emulated on this x86 machine, end to end:
# export a bundle, run `python -m nas_prune.on_device run` on aarch64 Python + numpy + onnxruntime
# under qemu-user, `nas-prune profile import` the results and fit a table labelled as emulated.
#
#   examples/aarch64_emulated.sh setup        # once: qemu-user-static, an arm64 Debian userland, the wheels
#   examples/aarch64_emulated.sh [run] [--space FILE] [--nets N] [--rounds R] [--out DIR]
#
# What this proves: the bundle, its runner and the import work on aarch64 (no torch there). What it
# does not: any device's speed. qemu translates every ARM instruction (~300x slower than the host
# here, and in other proportions), so the table's meta says "emulated" and `nas-prune run` never
# picks such a table up.
#
# Environment: NAS_PRUNE_ARM64_ROOT (the userland, default /opt/nas-prune-arm64), NAS_PRUNE_QEMU_CPU
# (the emulated core, default cortex-a72: a Raspberry Pi 4's), PYTHON (the host Python with nas-prune,
# default .venv/bin/python), NAS_PRUNE_DEBIAN_MIRROR. Setup needs root (or sudo) for apt-get and
# mmdebstrap; it is idempotent, and quick when done (a marker file records what was installed).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=${NAS_PRUNE_ARM64_ROOT:-/opt/nas-prune-arm64}
CPU=${NAS_PRUNE_QEMU_CPU:-cortex-a72}
PY=${PYTHON:-.venv/bin/python}
MIRROR=${NAS_PRUNE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
MARKER="$ROOT/.nas-prune-ready"
if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
say() { echo "aarch64_emulated: $*" >&2; }

pins() {  # the numpy and onnxruntime the project is tested with (constraints.txt)
  grep -E '^(numpy|onnxruntime)==' constraints.txt | sort | tr '\n' ' '
}

emulated_python() {  # run the arm64 python3 of $ROOT under qemu-user (no binfmt_misc or chroot needed)
  QEMU_CPU="$CPU" qemu-aarch64-static -L "$ROOT" "$ROOT/usr/bin/python3" "$@"
}

setup() {
  local want; want="$(pins) suite=$SUITE"
  if [ -f "$MARKER" ] && [ "$(head -n1 "$MARKER")" = "$want" ] && command -v qemu-aarch64-static >/dev/null; then
    say "userland ready in $ROOT ($want)"; return 0
  fi
  local need=()
  command -v qemu-aarch64-static >/dev/null 2>&1 || need+=(qemu-user-static)
  command -v mmdebstrap >/dev/null 2>&1 || need+=(mmdebstrap)
  if [ ${#need[@]} -gt 0 ]; then
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${need[@]}"
  fi
  if [ ! -x "$ROOT/usr/bin/python3" ]; then
    # "extract" unpacks the packages without running their scripts: no arm64 code runs while setting up
    say "unpacking arm64 python3 + libstdc++6 from Debian $SUITE into $ROOT"
    $SUDO mmdebstrap --arch=arm64 --variant=extract --include=python3,libstdc++6 "$SUITE" "$ROOT" "$MIRROR"
  fi
  # qemu-user 7.2 passes the host's /proc/cpuinfo through (x86 text); onnxruntime's CPU detection
  # (cpuinfo) then crashes (SIGSEGV on import). With -L the prefix's files shadow the host's, so
  # describe the emulated cores, and say what they are.
  local n i tmp; n=$(getconf _NPROCESSORS_ONLN); tmp=$(mktemp)
  for ((i = 0; i < n; i++)); do
    printf 'processor\t: %d\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU implementer\t: 0x41\n' "$i"
    printf 'CPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n\n'
  done >"$tmp"
  printf 'Hardware\t: qemu-aarch64 user-mode emulation (-cpu %s), not a device\n' "$CPU" >>"$tmp"
  $SUDO mkdir -p "$ROOT/proc" && $SUDO cp "$tmp" "$ROOT/proc/cpuinfo" && $SUDO chmod 644 "$ROOT/proc/cpuinfo"
  # the aarch64 wheels of numpy and onnxruntime (and onnxruntime's dependencies) from the package registry
  local pyver wheels site
  pyver=$(basename "$(readlink -f "$ROOT/usr/bin/python3")" | sed 's/^python//')
  wheels=$(mktemp -d); site="$ROOT/usr/lib/python3/dist-packages"
  # shellcheck disable=SC2046
  "$PY" -m pip download -q --only-binary=:all: --implementation cp --python-version "$pyver" \
    --platform manylinux_2_28_aarch64 --platform manylinux_2_27_aarch64 --platform manylinux2014_aarch64 \
    -c constraints.txt -d "$wheels" $(pins)
  $SUDO mkdir -p "$site"
  for w in "$wheels"/*.whl; do $SUDO "$PY" -m zipfile -e "$w" "$site"; done
  rm -rf "$wheels" "$tmp"
  local got; got=$(emulated_python -c "import platform, numpy, onnxruntime; print(platform.machine(), 'numpy', numpy.__version__, 'onnxruntime', onnxruntime.__version__)")
  say "emulated userland: $got"
  printf '%s\n%s\n' "$want" "$got" | $SUDO tee "$MARKER" >/dev/null
}

run() {
  local space=search_spaces/mobilenet_v2-32.json nets=12 rounds=3 out=runs/aarch64-emulated
  while [ $# -gt 0 ]; do
    case "$1" in
      --space) space=$2; shift 2 ;;
      --nets) nets=$2; shift 2 ;;
      --rounds) rounds=$2; shift 2 ;;
      --out) out=$2; shift 2 ;;
      *) say "unknown option $1: use --space FILE, --nets N, --rounds R, --out DIR"; exit 2 ;;
    esac
  done
  setup
  mkdir -p "$out/device/nas_prune/on_device"
  local t0 t1 t2 t3; t0=$(date +%s)
  NAS_PRUNE_PROGRESS=0 "$PY" -m nas_prune profile bundle --space "$space" --nets "$nets" --rounds "$rounds" \
    --runs-per-round 10 --warmup 3 -o "$out/bundle.zip"
  t1=$(date +%s)
  # the device gets only the runner's files (as on a phone), and its Python has numpy and onnxruntime, no torch
  cp nas_prune/__init__.py nas_prune/errors.py nas_prune/_io.py "$out/device/nas_prune/"
  cp nas_prune/on_device/*.py "$out/device/nas_prune/on_device/"
  (cd "$out/device" && NAS_PRUNE_EMULATED=qemu-aarch64 emulated_python -m nas_prune.on_device run ../bundle.zip \
    --threads 1 --device-name "qemu-aarch64-$CPU" -o ../results.json)
  t2=$(date +%s)
  "$PY" -m nas_prune profile import "$out/results.json" --space "$space" --emulated qemu-aarch64 \
    -o "$out/table_emulated.json"
  t3=$(date +%s)
  "$PY" - "$out/table_emulated.json" "$((t1 - t0))" "$((t2 - t1))" "$((t3 - t2))" <<'EOF'
import json, sys
t = json.load(open(sys.argv[1]))
m = t["meta"]
print(json.dumps({"table": sys.argv[1], "emulated": m.get("emulated"), "platform": m["platform"],
                  "cpu_model": m["cpu_model"], "onnxruntime": m["onnxruntime"], "nets": m["nets"],
                  "calibration": m["calibration"]["kind"], "reference_ms_emulated": round(t["reference"]["ms"], 3),
                  "cv_within_10pct": t["model"]["cv"]["within_10pct"], "bundle_s": int(sys.argv[2]),
                  "emulated_run_s": int(sys.argv[3]), "import_s": int(sys.argv[4])}))
EOF
}

case "${1:-run}" in
  setup) setup ;;
  run) shift || true; run "$@" ;;
  --*) run "$@" ;;
  *) say "usage: $0 [setup|run] [--space FILE] [--nets N] [--rounds R] [--out DIR]"; exit 2 ;;
esac
