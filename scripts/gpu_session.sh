#!/usr/bin/env bash
# A lent GPU session's checks in two calls of the device tool (at most 10 minutes a call), most
# wanted first, each step under its own time limit (docs/gpu.md, "Checking a GPU machine"):
#
#   bash scripts/gpu_session.sh                     # bench, check, pytest: at most 545 s
#   bash scripts/gpu_session.sh profile programs    # then, with the time left: at most 380 s
#
# bench:    `chainrule bench --device cuda` with the TF32 conv tiling on (issue 12's table; the
#           conv2d row is the open target), then conv2d again with the default (FP32) tiling;
# check:    gpu_check.py's environment, conv (every tiling, TF32 included, against the CPU maps;
#           the bench conv three ways), models and transfers sections;
# pytest:   tests/cuda and tests/device on the GPU;
# profile:  gpu_profile.py (every conv tiling and kernel, the transformer step's host/GPU split);
# programs: gpu_check.py's whole-programs section for PROGRAMS_SECONDS (default 200).
#
# Each step's output goes to $OUT/<step>.txt (the device tool brings $OUT back), and a line per
# step with its exit status and last lines to stdout.
set -u
cd "$(dirname "$0")/.." || exit 1
export PYTHONPATH="$PWD/src" PYTHONUNBUFFERED=1
OUT="${OUT:-$PWD/gpu_session_out}"
mkdir -p "$OUT"
PYTHON="${PYTHON:-python3}"

step() {
    local name=$1 limit=$2
    shift 2
    echo "== $name ($(date -u +%H:%M:%S), at most ${limit} s)"
    timeout "$limit" "$@" >> "$OUT/$name.txt" 2>&1
    echo "   exit $? | $(tail -n 4 "$OUT/$name.txt" | tr '\n' ' ' | cut -c1-400)"
}

run() {
    case $1 in
        bench)
            step bench 120 env CHAINRULE_CUDA_CONV=tf32 "$PYTHON" -m chainrule bench --device cuda
            step bench 45 "$PYTHON" -m chainrule bench --device cuda conv2d ;;
        check) step check 180 "$PYTHON" scripts/gpu_check.py --sections environment,conv,models,transfers ;;
        pytest) step pytest 200 "$PYTHON" -m pytest tests/cuda tests/device -q -p no:cacheprovider -n 12 ;;
        profile) step profile 120 "$PYTHON" scripts/gpu_profile.py ;;
        programs)
            step programs $(( ${PROGRAMS_SECONDS:-200} + 60 )) "$PYTHON" scripts/gpu_check.py --sections programs \
                --programs-seconds "${PROGRAMS_SECONDS:-200}" ;;
        *) echo "unknown step $1 (bench, check, pytest, profile, programs)"; return 2 ;;
    esac
}

status=0
for name in "${@:-bench check pytest}"; do
    for one in $name; do run "$one" || status=$?; done
done
exit $status
