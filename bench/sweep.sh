#!/bin/sh
# sweep.sh — a per-tensor one-at-a-time sweep with prefix reuse against the same sweep with
# naive full passes (the peer), in one run: points per second of each, the ratio, and whether
# both give the same table to the bit.
# Usage: sh bench/sweep.sh BUILD_DIR (needs BUILD_DIR/bench/bench_sweep and BUILD_DIR/plugins).
# Never part of `make test`: timings are not asserted.
build=${1:-build}
data=${QLAB_SHARED_DATA:-../shared/data}
threads=${BENCH_THREADS:-2}
repeat=${BENCH_REPEAT:-3}
schemes=${BENCH_SWEEP_SCHEMES:-'int:bits=2;int:bits=3;int:bits=4;int:bits=8;nf4;fp8_e4m3;q8_0'}
[ -x "$build/bench/bench_sweep" ] || {
    echo "bench: $build/bench/bench_sweep is missing: make BUILD=$build $build/bench/bench_sweep" >&2
    exit 1
}
export QLAB_PLUGIN_PATH="$build/plugins"

row() { # NAME MODEL DATA N_CTX REPEAT
    j=$("$build/bench/bench_sweep" "$2" "$3" "$schemes" "$threads" "$4" "$5") || exit 1
    /usr/bin/python3 - "$1" "$j" <<'PY' || exit 1
import json, sys
name, j = sys.argv[1], json.loads(sys.argv[2])
print("%-26s %7d %11.1f %11.1f %7.2fx  %s" % (
    name, j["points"], j["naive_points_per_s"], j["reuse_points_per_s"], j["speedup"],
    "same table" if j["same_table"] else "TABLES DIFFER"))
sys.exit(0 if j["same_table"] else 1)
PY
}

echo "per-tensor sweep (mode one), $threads threads, schemes '$schemes'"
printf '%-26s %7s %11s %11s %8s\n' "model / data" points "naive pt/s" "reuse pt/s" ratio
row "digits-cnn / digits-test" sample-models/digits-cnn sample-models/digits/digits-test.safetensors 0 "$repeat"
if [ -f "$data/stories260k/stories260K.bin" ]; then
    row "stories260K / eval-32k" "$data/stories260k/stories260K.bin" "$data/tinystories/eval-32k.txt" 256 1
else
    echo "(stories260K skipped: $data is absent)"
fi
