#!/bin/sh
# schemes.sh — one `qlab eval` per scheme (default parameters) on a model:
# the size-against-accuracy table of the scheme catalogue.
# Usage: sh bench/schemes.sh BUILD_DIR MODEL [DATA]. A scheme that cannot hold
# some tensors' rows (block formats need multiples of 32 or 256) is applied
# to the tensors it can hold; the others stay float, and the table says so.
build=${1:-build}
model=${2:-sample-models/digits-cnn}
data=${3:-}
qlab=$build/qlab
py=/usr/bin/python3
db=$(mktemp -d)/schemes.db
trap 'rm -rf "$(dirname "$db")"' EXIT
set -- ${data:+--data "$data"}

schemes=$("$qlab" plugins --json | $py -c '
import json, sys
d = json.load(sys.stdin)
for p in d["plugins"]:
    if p["name"] in ("example", "prune"):
        continue
    for s in p["schemes"]:
        print(p["name"] + "/" + s["name"])
')
"$qlab" info "$model" --json >"$db.info" || exit 1

row() { # RECIPE LABEL [--data FILE]
    recipe=$1 label=$2
    shift 2
    out=$("$qlab" eval "$model" "$@" --db "$db" --quant "$recipe" --json 2>/dev/null) || return 1
    echo "$out" | $py -c '
import json, sys
r = json.load(sys.stdin); m = r["metrics"]
q = sum(1 for t in r["tensors"] if t["scheme"] != "float" and t["role"] == "weight")
w = sum(1 for t in r["tensors"] if t["role"] == "weight")
print("%-24s %9d %7.3f %6.1f%% %7.2f %+7.2f %10.5f  %d/%d" % (sys.argv[1], r["size_bytes"],
      r["bits_per_weight"], 100 * r["ratio"], m["top1"], m["top1"] - m["float"]["top1"],
      m["kld_mean"], q, w))' "$label"
}

printf '%-24s %9s %7s %7s %7s %7s %10s  %s\n' "scheme" "bytes" "bpw" "ratio" "top-1" "dtop-1" \
    "KLD" "weights"
row "" float "$@"
for s in $schemes; do
    if ! row "*=$s" "$s" "$@"; then
        # only the weights whose rows this scheme can hold
        names=$($py - "$db.info" "$s" "$qlab" <<'PY'
import json, subprocess, sys
info = json.load(open(sys.argv[1]))
ok = []
for t in info["tensors"]:
    if t["role"] != "weight":
        continue
    r = subprocess.run([sys.argv[3], "info", info["path"], "--quant", t["name"] + "=" + sys.argv[2],
                        "--json"], capture_output=True)
    if r.returncode == 0:
        ok.append(t["name"] + "=" + sys.argv[2])
print(";".join(ok))
PY
)
        if [ -n "$names" ]; then
            row "$names" "$s" "$@" || echo "$s: eval failed"
        else
            echo "$s: holds no tensor of this model"
        fi
    fi
done
