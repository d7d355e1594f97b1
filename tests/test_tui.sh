#!/bin/sh
# test_tui.sh — drives the real `qlab tui` in a detached 80x24 tmux pane and checks what it shows.
#
# Usage (from the repository root): sh tests/test_tui.sh BUILD_DIR
# Exit 0 pass, 1 fail, 77 skip (no tmux, or no sample model).
# Every wait polls `tmux capture-pane` for the expected text until a
# deadline; nothing relies on a fixed sleep.

tui_name=tui
. tests/tui_lib.sh
model=sample-models/digits-cnn

[ -f "$model/model.json" ] || { echo "SKIP: $model is absent (make sample-models)"; exit 77; }

tui_setup
db=$tmp/tui.db

# ---- helpers ------------------------------------------------------------------
# Row numbers found by name in `qlab plugins`, whose listing has the same
# rows, in the same order, as the TUI's lists (so a plugin that gains a
# scheme or a parameter moves rows without breaking the test);
# scheme_pick_steps (tests/tui_lib.sh) reads plugins_text too.
plugins_text() {
    QLAB_PLUGIN_PATH=$plugdir "$bin" plugins 2>"$tmp/cli.stderr" || {
        cat "$tmp/cli.stderr" >&2
        fail "qlab plugins failed"
    }
}
# plugins_row PLUGIN [PARAM]: 0-based row of the plugin (or of its parameter) on the Plugins screen
plugins_row() {
    plugins_text | awk -v p="$1" -v k="$2" '
        /^[^ ]/ && !/^refused:/ { pl = $1; if (pl == p && k == "") { print NR - 1; exit } }
        pl == p && k != "" && /^      [^ ]/ && $1 == k { print NR - 1; exit }'
}

# ---- start ------------------------------------------------------------------------
# A folder on the plugin path with a file that is no plugin: discovery refuses it.
plugdir=$tmp/plugins
mkdir -p "$plugdir" || exit 1
echo "not a shared object" >"$plugdir/junk.so"
tui_launch <<EOF
QLAB_PLUGIN_PATH="$plugdir" "$bin" tui "$model" --db "$db"
EOF

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
# The picker and the editor are walked by name: plugins and parameters
# come and go while others work on them.
keys / c o n v 2 . w
wait_for 'Filter tensors: conv2\.w'
keys Enter
wait_for '1 shown'
keys Enter
wait_for 'Scheme for conv2\.weight'
steps=$(scheme_pick_steps int int)
[ -n "$steps" ] || fail "qlab plugins lists no int/int scheme"
keys g
press j "$steps"
keys Enter
wait_for 'int/int for conv2\.weight'
wait_for 'bits +8 +2\.\.8'
row=$(param_row bits)
[ -n "$row" ] || fail "no 'bits' row in the parameter editor of int"
keys g
press j "$row"
# An out-of-range value is refused in the dialog ...
keys 9 Enter
wait_for 'bits=9 is out of range'
# ... a good one is taken.
keys C-u 4 Enter
wait_for 'bits +4 +2\.\.8'
wait_for '4\.222 bits/weight for conv2\.weight'
keys G Enter
wait_for '^conv2\.weight .* int:bits=4 '

# Export the quantized tensor (x): the prompt offers NAME.SCHEME.safetensors.
out=$tmp/x.safetensors # short: the status line keeps its numbers at 80 columns
keys x
wait_for 'Export to: conv2\.weight\.int\.safetensors'
keys C-u
keys -l "$out"
keys Enter
wait_for 'wrote (.*/)?x\.safetensors: conv2\.weight\.deq at 4\.222 bits/weight, SQNR [0-9.]+ dB'
[ -s "$out" ] || fail "x did not write $out"
# safetensors: an 8-byte little-endian header length, then the JSON header
hlen=$(od -An -t u8 -N 8 "$out" | tr -d ' ')
case $hlen in
'' | *[!0-9]*) fail "$out: no header length" ;;
esac
header=$(head -c $((8 + hlen)) "$out" | tail -c "$hlen")
case $header in
*'"conv2.weight.deq":{"dtype":"F32","shape":[32,16,3,3]'*) ;;
*) fail "$out: header lacks conv2.weight.deq as F32 [32,16,3,3]: $header" ;;
esac
# The same file again asks before overwriting; Enter means no.
keys x
wait_for 'Export to: '
keys C-u
keys -l "$out"
keys Enter
wait_for 'exists\. Overwrite\? \(y/N\)'
keys Enter
wait_for 'not exported: '
keys Escape
wait_for '^conv1\.weight +conv2d'
grep -Eq '^conv1\.weight .* float ' "$screen" || fail "conv1.weight should still be float"
# A float tensor has nothing to export.
keys g x
wait_for 'conv1\.weight is float: nothing to export'

# The Plugins screen (P): int with its bits parameter, the refused file.
keys P
wait_for 'Plugins: [0-9]+ loaded, 1 refused'
wait_for '^ Plugin / scheme +Type +Range/choices +Default'
keys '?'
wait_for 'Help: Plugins'
keys Escape
wait_for 'Plugins: [0-9]+ loaded'
row=$(plugins_row int bits)
[ -n "$row" ] || fail "qlab plugins lists no bits parameter of int"
keys g
press j "$row"
wait_for '^ bits \(int 2\.\.8, default 8\): '
grep -Eq '^ int [0-9][^ ]* ' "$screen" || fail "the int plugin's row is not shown above its parameters"
grep -Eq '^   int( |$)' "$screen" || fail "the int scheme's row is not shown"
grep -Eq '^     bits +int +2\.\.8 +8 ' "$screen" || fail "int's bits parameter row is not shown"
grep -Eq 'file .*/int\.so' "$screen" || fail "the int plugin's file is not shown"
keys G
wait_for 'Refused at discovery \(1\)'
wait_for 'junk\.so'
# Check the int plugin (Enter on any of its rows): the report lists every case.
keys g
press j "$row"
wait_for '^ bits \(int 2\.\.8, default 8\): '
keys Enter
wait_for 'Check: int [0-9]'
wait_for 'all checks passed'
wait_for '^ok +int( |$)'
wait_for '^ok +random 16x256 +[0-9]+\.[0-9]+ '
grep -Eq '^ok +zeros 4x256 ' "$screen" || fail "check report lacks the zeros case"
grep -Eq '^Status +Scheme / case +Bits/w +Rel\.RMSE' "$screen" || fail "check report has no header"
keys q
wait_for 'Plugins: [0-9]+ loaded'
keys q
wait_for 'Model: digits-cnn'

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
tui_wait_exit

# The CLI sees the run as done.
runs_list_json "$db"
case $flat in
*"\"id\":$id,\"status\":\"done\""*) ;;
*) fail "runs list --json lacks run $id with status done: $json" ;;
esac
case $flat in
*"conv2.weight=int:bits=4"*) ;;
*) fail "runs list --json: run $id does not have the recipe set in the TUI: $json" ;;
esac
exit 0
