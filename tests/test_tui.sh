#!/bin/sh
# test_tui.sh — drives the real `qlab tui` in a detached 80x24 tmux pane and checks what it shows.
#
# Usage (from the repository root): sh tests/test_tui.sh BUILD_DIR
# Exit 0 pass, 1 fail, 77 skip (no tmux, or no sample model).
# Every wait polls `tmux capture-pane` for the expected text until a
# deadline; nothing relies on a fixed sleep.

build=${1:-build}
case $build in
/*) ;;
*) build=$(pwd)/$build ;;
esac
bin=$build/qlab
root=$(pwd)
model=sample-models/digits-cnn

command -v tmux >/dev/null 2>&1 || { echo "SKIP: tmux is not installed"; exit 77; }
[ -x "$bin" ] || { echo "FAIL: $bin is not built" >&2; exit 1; }
[ -f "$model/model.json" ] || { echo "SKIP: $model is absent (make sample-models)"; exit 77; }

if [ -n "$QLAB_TMP" ]; then
    tmp=$QLAB_TMP/tui-test.$$
    mkdir -p "$tmp" || exit 1
else
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/qlab-tui.XXXXXX") || exit 1
fi
db=$tmp/tui.db
sock=qlab-tui-test-$$
unset TMUX
tm() { tmux -L "$sock" "$@"; }
cleanup() {
    tm kill-server >/dev/null 2>&1
    if [ -z "$QLAB_TMP" ]; then rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

screen=$tmp/screen.txt

# ---- helpers ------------------------------------------------------------------
fail() {
    echo "FAIL: test_tui: $*" >&2
    if [ -s "$screen" ]; then
        echo "---- last screen ----" >&2
        cat "$screen" >&2
        echo "---------------------" >&2
    fi
    if [ -s "$tmp/tui.stderr" ]; then
        echo "---- qlab stderr ----" >&2
        cat "$tmp/tui.stderr" >&2
    fi
    exit 1
}

capture() {
    tm capture-pane -p >"$screen" 2>/dev/null
}

# wait_for REGEX [SECONDS]: polls the pane until a line matches (grep -E).
wait_for() {
    tries=$(( ${2:-20} * 10 ))
    while [ "$tries" -gt 0 ]; do
        capture
        grep -Eq -- "$1" "$screen" && return 0
        sleep 0.1
        tries=$((tries - 1))
    done
    fail "timed out waiting for /$1/"
}

keys() {
    tm send-keys "$@" || fail "tmux send-keys $*"
}

# ---- start ------------------------------------------------------------------------
cat >"$tmp/run.sh" <<EOF
cd "$root" || exit 1
"$bin" tui "$model" --db "$db" 2>"$tmp/tui.stderr"
echo \$? >"$tmp/tui.rc.part"
mv "$tmp/tui.rc.part" "$tmp/tui.rc"
EOF
tm new-session -d -x 80 -y 24 "sh '$tmp/run.sh'" || fail "cannot start tmux"

# The Model screen: header and tensor table.
wait_for 'Model: digits-cnn'
wait_for '^conv1\.weight +conv2d'
grep -Eq 'bits/weight +32\.00' "$screen" || fail "header lacks the float bits/weight"
grep -Eq 'F1 ?Help' "$screen" || fail "no function bar"

# Help overlay, then back.
keys '?'
wait_for 'Help: Model'
keys Escape
wait_for '^Tensor +Op'

# Filter to one tensor and pick its scheme: int, bits=4.
keys / c o n v 2 . w
wait_for 'Filter tensors: conv2\.w'
keys Enter
wait_for '1 shown'
keys Enter
wait_for 'Scheme for conv2\.weight'
keys j Enter
wait_for 'int/int for conv2\.weight'
wait_for 'bits +8 +2\.\.8'
# An out-of-range value is refused in the dialog ...
keys 9 Enter
wait_for 'bits=9 is out of range'
# ... a good one is taken.
keys C-u 4 Enter
wait_for 'bits +4 +2\.\.8'
wait_for '4\.222 bits/weight for conv2\.weight'
keys G Enter
wait_for '^conv2\.weight .* int:bits=4 '
keys Escape
wait_for '^conv1\.weight +conv2d'
grep -Eq '^conv1\.weight .* float ' "$screen" || fail "conv1.weight should still be float"

# Resize below the minimum and back.
tm resize-window -x 50 -y 12
wait_for 'Terminal too small'
tm resize-window -x 80 -y 24
wait_for '^conv2\.weight .* int:bits=4 '

# Evaluate; the metrics appear beside the float baseline.
keys r
wait_for 'run #[0-9]+ +done +top-1 [0-9.]+ \(float [0-9.]+\)' 60
id=$(sed -n 's/.*run #\([0-9][0-9]*\) *done.*/\1/p' "$screen" | head -n 1)
[ -n "$id" ] || fail "no run id on the Model screen"
grep -Eq 'KLD [0-9.e-]+' "$screen" || fail "no KLD on the Model screen"

# History lists the run; Enter shows its tensors.
keys H
wait_for 'History: digits-cnn'
wait_for "^ *$id +done "
keys Enter
wait_for "Run #$id: digits-cnn"
wait_for '^conv2\.weight +int +bits=4'
grep -Eq '^conv1\.weight +float ' "$screen" || fail "run detail: conv1.weight should be float"
keys q
wait_for 'History: digits-cnn'
keys q
wait_for 'Model: digits-cnn'
keys q

# The process exits cleanly.
tries=200
while [ ! -f "$tmp/tui.rc" ] && [ "$tries" -gt 0 ]; do
    sleep 0.1
    tries=$((tries - 1))
done
[ -f "$tmp/tui.rc" ] || { capture; fail "qlab did not exit after q"; }
rc=$(cat "$tmp/tui.rc")
[ "$rc" = 0 ] || fail "qlab tui exited with $rc"

# The CLI sees the run as done.
json=$("$bin" runs list --db "$db" --json 2>"$tmp/cli.stderr") || {
    cat "$tmp/cli.stderr" >&2
    fail "qlab runs list failed"
}
flat=$(printf '%s' "$json" | tr -d ' \t\r\n')
case $flat in
*"\"id\":$id,\"status\":\"done\""*) ;;
*) fail "runs list --json lacks run $id with status done: $json" ;;
esac
case $flat in
*"conv2.weight=int:bits=4"*) ;;
*) fail "runs list --json: run $id does not have the recipe set in the TUI: $json" ;;
esac
exit 0
