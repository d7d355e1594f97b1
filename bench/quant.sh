#!/bin/sh
# quant.sh — quantize+dequantize throughput of every scheme plugin, and qlab's int8/int4
# per-channel path against PyTorch's fake_quantize_per_channel_affine, in one run.
# Usage: sh bench/quant.sh BUILD_DIR (needs BUILD_DIR/bench/quant_throughput and
# BUILD_DIR/plugins/*.so: make BUILD=BUILD_DIR all BUILD_DIR/bench/quant_throughput).
# Settings: BENCH_REPEAT (5), BENCH_LIMIT (60: seconds one call may take).
# Never part of `make test`: timings are not asserted.
#
# Allocator. Both sides allocate a fresh 64 MiB result per call (qlab's
# evaluation path its output buffer, PyTorch its output tensor), so both pay the
# kernel's page faults, which on some VMs (~15 us per 4 KiB page) swamp the
# arithmetic. The int8/int4 rows are measured twice, both programs alike:
# with glibc's defaults and with transparent huge pages for malloc's large
# blocks (GLIBC_TUNABLES=glibc.malloc.hugetlb=1, which makes that cost
# ordinary); every other scheme is measured with huge pages only.
build=${1:-build}
repeat=${BENCH_REPEAT:-5}
limit=${BENCH_LIMIT:-60}
thp=glibc.malloc.hugetlb=1
py=/usr/bin/python3
bin=$build/bench/quant_throughput
if [ ! -x "$bin" ] || [ ! -f "$build/plugins/int.so" ]; then
    echo "bench: $bin or $build/plugins/int.so is missing: make BUILD=$build all $bin" >&2
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
tmp=$(mktemp -d "${TMPDIR:-/tmp}/qlab-bench.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
mkdir "$tmp/int" && ln -s "$(cd "$build/plugins" && pwd)/int.so" "$tmp/int/int.so" || exit 1

q_thp=$(GLIBC_TUNABLES=$thp "$bin" "$build/plugins" "$repeat" "$limit") || exit 1
t_thp=$(GLIBC_TUNABLES=$thp $py bench/torch_fake_quant.py "$repeat") || exit 1
q_def=$(env -u GLIBC_TUNABLES "$bin" "$tmp/int" "$repeat" "$limit") || exit 1
t_def=$(env -u GLIBC_TUNABLES $py bench/torch_fake_quant.py "$repeat") || exit 1
$py - "$q_thp" "$t_thp" "$q_def" "$t_def" <<'PY'
import json, sys


def qlab_rows(text):
    rows, notes = [], []
    for line in text.splitlines():
        if line.startswith("# refused"):
            notes.append(line[2:])
        elif line.strip() and not line.startswith("#"):
            f = line.split("\t")
            rows.append(dict(tag=f[0], name=f[1], params=f[2], host=f[3], fresh=f[4], raw=f[5],
                             bpw=f[6], mse=f[7], status=f[8]))
    return rows, notes


def torch_rows(text):
    return {j["bits"]: j for j in map(json.loads, text.splitlines())}


q_thp, notes = qlab_rows(sys.argv[1])
q_def, _ = qlab_rows(sys.argv[3])
t_thp, t_def = torch_rows(sys.argv[2]), torch_rows(sys.argv[4])
first = next(iter(t_thp.values()))
print("quantize+dequantize of a 4096x4096 float32 tensor (67.1 MB of input), MB/s, best of each;")
print("qlab: 1 thread; torch %s: fake_quantize_per_channel_affine, %d threads"
      % (first["torch"], first["threads"]))
print("host = through the host's checks into a reused buffer (qscheme_quantize_into);")
print("fresh = the same into a newly allocated buffer, as torch returns a new tensor;")
print("raw = the plugin's call alone; torch fq = the call alone (scales given);")
print("fq+amax = with the per-row amax / qmax computed too, as qlab does")
print()
print("%-13s %-8s %9s %9s %9s %9s %9s %8s %8s %11s %11s" % (
    "symmetric", "malloc", "qlab host", "fresh", "qlab raw", "torch fq", "fq+amax", "host/fq",
    "fresh/fq", "mse qlab", "mse torch"))
for tag, bits in (("int8/channel", 8), ("int4/channel", 4)):
    for label, rows, peer in (("thp", q_thp, t_thp), ("default", q_def, t_def)):
        r = next((r for r in rows if r["tag"] == tag), None)
        p = peer.get(bits)
        if r is None or p is None or r["host"] == "-":
            print("%-13s %-8s %s" % (tag, label, r["status"] if r else "no int plugin loaded"))
            continue
        h, f, w = float(r["host"]), float(r["fresh"]), float(r["raw"])
        print("%-13s %-8s %9.0f %9.0f %9.0f %9.0f %9.0f %7.2fx %7.2fx %11.6g %11.6g" % (
            tag, label, h, f, w, p["mb_per_s"], p["mb_per_s_with_scale"], h / p["mb_per_s"],
            f / p["mb_per_s"], float(r["mse"]), p["mse"]))
print()
print("every scheme, default parameters (int also int8/int4 per channel), malloc thp:")
print("%-18s %-24s %9s %9s %9s %8s %11s  %s" % (
    "plugin/scheme", "params", "host MB/s", "fresh", "raw MB/s", "bits/w", "mse", "status"))
for r in q_thp:
    params = r["params"] if len(r["params"]) <= 24 else r["params"][:21] + "..."
    print("%-18s %-24s %9s %9s %9s %8s %11s  %s" % (
        r["name"], params, r["host"], r["fresh"], r["raw"], r["bpw"], r["mse"], r["status"]))
for n in notes:
    print(n)
PY
