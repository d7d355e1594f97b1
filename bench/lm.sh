#!/bin/sh
# lm.sh — qlab's language-model evaluation against a plain PyTorch llama (Debian's python3-torch)
# on the same checkpoints, chunks and scoring, in one run; then qlab eval's peak memory.
# Usage: sh bench/lm.sh BUILD_DIR (needs BUILD_DIR/qlab and BUILD_DIR/bench/bench_lm; builds
# nothing). Never part of `make test`: timings are not asserted.
build=${1:-build}
data=${QLAB_SHARED_DATA:-../shared/data}
threads=${BENCH_THREADS:-2}
repeat=${BENCH_REPEAT:-3}
chunks=${BENCH_LM_CHUNKS:-16}
n_ctx=256
recipe='*=int:bits=8,granularity=channel'
py=/usr/bin/python3
for f in "$build/qlab" "$build/bench/bench_lm"; do
    [ -x "$f" ] || { echo "bench: $f is missing: make BUILD=$build $f" >&2; exit 1; }
done
if ! $py -c 'import torch, numpy' 2>/dev/null; then
    if [ "$(id -u)" = 0 ]; then
        apt-get install -y python3-torch python3-numpy >/dev/null || exit 1
    else
        echo "bench: the peer needs PyTorch: sudo apt-get install -y python3-torch python3-numpy" >&2
        exit 1
    fi
fi
# qlab's forward pass runs one thread per core it may use: pin it to $threads cores
pin=""
if [ "$(nproc)" -gt "$threads" ] && command -v taskset >/dev/null 2>&1; then
    pin="taskset -c 0-$((threads - 1))"
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/qlab-lm-bench.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM

row() { # NAME MODEL DATA: qlab and torch on the same ids (bench_lm writes the ones it evaluated)
    q=$($pin "$build/bench/bench_lm" "$2" "$3" "$n_ctx" "$repeat" "$threads" "$tmp/ids.i32") || exit 1
    t=$($py bench/torch_llama.py "$2" "$tmp/ids.i32" "$n_ctx" "$repeat" "$threads") || exit 1
    $py - "$1" "$q" "$t" <<'PY' || exit 1
import json, sys
name, q, t = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
rel = abs(q["ppl"] - t["ppl"]) / t["ppl"]
print("%-30s %7d %11.0f %11.0f %7.2fx  %12.7g %12.7g %9.1e%s" % (
    name, q["tokens"], q["tokens_per_s"], t["tokens_per_s"], q["tokens_per_s"] / t["tokens_per_s"],
    q["ppl"], t["ppl"], rel, "" if rel <= 1e-4 else "  PPLs DISAGREE"))
sys.exit(0 if rel <= 1e-4 and q["tokens"] == t["tokens"] else 1)
PY
}

# the stories15M shape with random weights (output tied to the embedding), random ids
$py bench/make_synthetic_llama.py "$tmp/s15m.bin" "$tmp/s15m.i32" $((chunks * n_ctx + 1)) || exit 1

echo "LM evaluation: perplexity over every chunk of n_ctx $n_ctx, $threads threads, best of $repeat ($($py -c 'import torch; print("torch", torch.__version__)'))"
printf '%-30s %7s %11s %11s %8s  %12s %12s %9s\n' "model / data" tokens "qlab tok/s" "torch tok/s" ratio \
    "PPL qlab" "PPL torch" "rel diff"
if [ -f "$data/stories260k/stories260K.bin" ]; then
    row "stories260K / eval-32k" "$data/stories260k/stories260K.bin" "$data/tinystories/eval-32k.txt"
else
    echo "(stories260K skipped: $data is absent)"
fi
row "15M shape (random) / ids" "$tmp/s15m.bin" "$tmp/s15m.i32"

# Peak RSS of one `qlab eval` with a quantized recipe, the float reference
# pass included (an empty cache and database), next to 3x the float32 size.
XDG_DATA_HOME=$tmp/data XDG_CACHE_HOME=$tmp/cache $py - "$build/qlab" "$tmp/s15m.bin" "$tmp/s15m.i32" \
    "$n_ctx" "$recipe" <<'PY'
import json, resource, subprocess, sys
qlab, model, ids, n_ctx, recipe = sys.argv[1:]
r = subprocess.run([qlab, "eval", model, "--data", ids, "--ctx", n_ctx, "--quant", recipe, "--json"],
                   stdout=subprocess.PIPE, check=True)
run = json.loads(r.stdout)
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # Linux: KiB
f32 = run["float_bytes"]
print("peak RSS of qlab eval (15M shape, '%s', float reference pass included): %.1f MB = %.2fx "
      "the float32 size %.1f MB (limit 3x = %.1f MB): %s" % (
          recipe, rss / 1e6, rss / f32, f32 / 1e6, 3 * f32 / 1e6, "below" if rss < 3 * f32 else "ABOVE"))
m = run["metrics"]
print("  (its run: PPL %.2f, float PPL %.2f, mean KLD %.5f)" % (m["ppl"], m["float"]["ppl"], m["kld_mean"]))
sys.exit(0 if rss < 3 * f32 else 1)
PY
