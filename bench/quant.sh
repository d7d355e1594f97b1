#!/bin/sh
# quant.sh — quantize+dequantize throughput of every scheme plugin, and qlab's int8/int4
# per-channel path against PyTorch's fake_quantize_per_channel_affine, in one run.
# Usage: sh bench/quant.sh BUILD_DIR (needs BUILD_DIR/bench/quant_throughput and
# BUILD_DIR/plugins/*.so: make BUILD=BUILD_DIR all BUILD_DIR/bench/quant_throughput).
# Settings: BENCH_REPEAT (5); BENCH_TUNABLES, the glibc malloc tunables given to
# both programs (default glibc.malloc.hugetlb=1, see below; empty: glibc's defaults).
# Never part of `make test`: timings are not asserted.
build=${1:-build}
repeat=${BENCH_REPEAT:-5}
# Both sides allocate a fresh 64 MiB result per call (qlab's host a checked
# private buffer, PyTorch its output tensor), so both pay the kernel's page
# faults; where those are slow (some VMs: ~15 us per 4 KiB page) they swamp
# the arithmetic. Transparent huge pages for malloc's large blocks make that
# cost ordinary, for both programs alike.
tunables=${BENCH_TUNABLES-glibc.malloc.hugetlb=1}
py=/usr/bin/python3
bin=$build/bench/quant_throughput
if [ ! -x "$bin" ]; then
    echo "bench: $bin is missing: make BUILD=$build all $bin" >&2
    exit 1
fi
if ! $py -c 'import torch, numpy' 2>/dev/null; then
    if [ "$(id -u)" = 0 ]; then
        apt-get install -y python3-torch python3-numpy >/dev/null || exit 1
    else
        echo "bench: the peer needs PyTorch: sudo apt-get install -y python3-torch python3-numpy" >&2
        exit 1
    fi
fi

q=$(GLIBC_TUNABLES=$tunables "$bin" "$build/plugins" "$repeat") || exit 1
t=$(GLIBC_TUNABLES=$tunables $py bench/torch_fake_quant.py "$repeat") || exit 1
$py - "$q" "$t" "$tunables" <<'PY'
import json, sys
q, t, tunables = sys.argv[1], sys.argv[2], sys.argv[3]
rows, notes = [], []
for line in q.splitlines():
    if line.startswith("# refused"):
        notes.append(line[2:])
    elif line.startswith("#"):
        continue
    elif line.strip():
        f = line.split("\t")
        rows.append(dict(tag=f[0], name=f[1], params=f[2], host=f[3], raw=f[4], bpw=f[5],
                         mse=f[6], status=f[7]))
torch = {j["bits"]: j for j in map(json.loads, t.splitlines())}
first = next(iter(torch.values()))
print("quantize+dequantize of a 4096x4096 float32 tensor (67.1 MB), best of each, MB/s of input;")
print("qlab: 1 thread; torch %s: fake_quantize_per_channel_affine, %d threads; GLIBC_TUNABLES=%s"
      % (first["torch"], first["threads"], tunables or "(glibc defaults)"))
print("host = through qscheme_quantize (private buffer, checks, copy); raw = the plugin's call alone")
print()
print("%-14s %10s %10s %10s %14s %9s %9s %12s %12s" % (
    "per channel", "qlab host", "qlab raw", "torch fq", "torch fq+amax", "host/fq", "raw/fq",
    "mse qlab", "mse torch"))
for tag, bits in (("int8/channel", 8), ("int4/channel", 4)):
    r = next((r for r in rows if r["tag"] == tag), None)
    p = torch.get(bits)
    if r is None or p is None or r["host"] == "-":
        print("%-14s %s" % (tag, r["status"] if r else "no int plugin loaded"))
        continue
    h, w = float(r["host"]), float(r["raw"])
    print("%-14s %10.0f %10.0f %10.0f %14.0f %8.2fx %8.2fx %12.6g %12.6g" % (
        tag, h, w, p["mb_per_s"], p["mb_per_s_with_scale"], h / p["mb_per_s"],
        w / p["mb_per_s"], float(r["mse"]), p["mse"]))
print()
print("%-18s %-34s %10s %10s %8s %11s  %s" % (
    "plugin/scheme", "params", "host MB/s", "raw MB/s", "bits/w", "mse", "status"))
for r in rows:
    params = r["params"] if len(r["params"]) <= 34 else r["params"][:31] + "..."
    print("%-18s %-34s %10s %10s %8s %11s  %s" % (
        r["name"], params, r["host"], r["raw"], r["bpw"], r["mse"], r["status"]))
for n in notes:
    print(n)
PY
