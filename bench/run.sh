#!/bin/sh
# run.sh — qlab's float forward pass against PyTorch (Debian's python3-torch) on the
# same models and data, in one run; prints images/s of each and the ratio.
# Usage: sh bench/run.sh BUILD_DIR. Never part of `make test`: timings are not asserted.
build=${1:-build}
data=${QLAB_SHARED_DATA:-../shared/data}
threads=${BENCH_THREADS:-$(nproc)}
batch=${BENCH_BATCH:-64}
repeat=${BENCH_REPEAT:-5}
py=/usr/bin/python3
if ! $py -c 'import torch, numpy' 2>/dev/null; then
    if [ "$(id -u)" = 0 ]; then
        apt-get install -y python3-torch python3-numpy >/dev/null || exit 1
    else
        echo "bench: the peer needs PyTorch: sudo apt-get install -y python3-torch python3-numpy" >&2
        exit 1
    fi
fi

row() { # NAME MODEL DATA
    q=$("$build/bench/bench_eval" "$2" "$3" "" "$repeat" "$threads" "$batch") || exit 1
    t=$($py bench/torch_eval.py "$2" "$3" "$repeat" "$threads" "$batch") || exit 1
    $py - "$1" "$q" "$t" <<'PY'
import json, sys
name, q, t = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
print("%-28s %7d %12.0f %12.0f %8.2fx   top-1 qlab %.2f  torch %.2f" % (
    name, q["images"], q["images_per_s"], t["images_per_s"],
    q["images_per_s"] / t["images_per_s"], q["top1"], t["top1"]))
PY
}

echo "float eval, $threads threads, batch $batch, best of $repeat ($(/usr/bin/python3 -c 'import torch; print("torch", torch.__version__)'))"
printf '%-28s %7s %12s %12s %9s\n' "model / data" "images" "qlab img/s" "torch img/s" "ratio"
row "digits-cnn / digits-train" sample-models/digits-cnn sample-models/digits/digits-train.safetensors
row "digits-mlp / digits-train" sample-models/digits-mlp sample-models/digits/digits-train.safetensors
if [ -f "$data/mnist-cnn-bn/mnist.safetensors" ]; then
    tmp=$(mktemp -d)
    sed "s#\"../../../../shared/data/#\"$(cd "$data" && pwd)/#" tests/fixtures/mnist-cnn-bn/model.json >"$tmp/model.json"
    row "mnist-cnn-bn / MNIST test" "$tmp/model.json" "$data/mnist/t10k-images-idx3-ubyte.gz"
    rm -rf "$tmp"
else
    echo "(mnist-cnn-bn skipped: $data is absent)"
fi
