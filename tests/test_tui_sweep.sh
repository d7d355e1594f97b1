#!/bin/sh
# test_tui_sweep.sh — drives the Sweep, Pareto and History screens of `qlab tui` in a detached 80x24 tmux pane.
#
# Usage (from the repository root): sh tests/test_tui_sweep.sh BUILD_DIR
# Exit 0 pass, 1 fail, 77 skip (no tmux, or no sample model).
# Covers: a sweep started from the form (3 schemes x 4 tensors of
# digits-cnn) filling its heatmap, the exact value of a cell against
# `qlab sweeps show --csv`, sorting by sensitivity, the Pareto chart of a
# 5bpw search with its optimum against `qlab searches show`, applying the
# optimum's recipe, History's Sweeps and Searches tabs, the ASCII and
# monochrome rendering (LC_ALL=C, NO_COLOR), and, with the shared
# stories260K model, a language-model sweep asked for its text file,
# cancelled with Esc and resumed with R. Every wait polls `tmux
# capture-pane` for the expected text until a deadline; nothing relies on a
# fixed sleep.

tui_name=tui_sweep
. tests/tui_lib.sh
model=sample-models/digits-cnn

[ -f "$model/model.json" ] || { echo "SKIP: $model is absent (make sample-models)"; exit 77; }

tui_setup
db=$tmp/sweep.db
unset NO_COLOR

# ---- helpers ------------------------------------------------------------------
# cli ARGS...: runs qlab on the test's database, its output in $out
cli() {
    out=$("$bin" "$@" --db "$db" 2>"$tmp/cli.stderr") || {
        cat "$tmp/cli.stderr" >&2
        fail "qlab $* failed"
    }
}

# csv_field GROUP SCHEME COLUMN: a field of `qlab sweeps show 1 --csv`
csv_field() {
    printf '%s\n' "$csv" | awk -F, -v g="\"$1\"" -v s="\"$2\"" -v c="$3" \
        '$1 == g && $2 == s { print $c; exit }'
}

# grid_first: the first group row under the heatmap's column titles
grid_first() {
    capture
    awk 'found { print $1; exit } /^Group/ { found = 1 }' "$screen"
}

# ---- the sweep --------------------------------------------------------------------
tui_launch <<EOF
LC_ALL=C.UTF-8 "$bin" tui "$model" --db "$db"
EOF
wait_for 'Model: digits-cnn'
wait_for 'S ?Sweep'
keys S
wait_for 'Sweep: digits-cnn'
wait_for 'No sweep of this model yet: press n'
keys n
wait_for 'New sweep of digits-cnn'
wait_for 'Schemes +int:bits=2;int:bits=3;int:bits=4;int:bits=8'
grep -Eq 'Group +tensor' "$screen" || fail "the form's group is not tensor by default"
grep -Eq 'Metric +cross_entropy' "$screen" || fail "the form's metric is not cross_entropy"
keys C-u
keys -l 'int:bits=2;int:bits=4;int:bits=8'
keys Tab C-u
keys -l tensor
keys Enter
wait_for 'Sweep 1: digits-cnn +4 groups x 3 schemes' 60
wait_for '^ done +points 12/12 ' 120
wait_for 'sweep 1 done: 12 points computed'
# every cell holds a number
for g in conv1 conv2 conv3 fc; do
    grep -Eq "^$g\\.weight( +-?[0-9][0-9.e+-]*){3} *\$" "$screen" ||
        fail "the heatmap row of $g.weight does not hold three numbers"
done
grep -Eq '^Group +int:bits=2 +int:bits=4 +int:bits=8' "$screen" || fail "no scheme columns"
grep -Eq '^ (Δ|d)cross_entropy ' "$screen" || fail "no legend"
cp "$screen" "$tmp/heatmap.txt"

# The cell under the cursor, exactly as the CLI has it.
cli sweeps show 1 --csv
csv=$out
change=$(csv_field conv2.weight int:bits=4 6)
bits=$(csv_field conv2.weight int:bits=4 4)
if [ -z "$change" ] || [ -z "$bits" ]; then
    fail "sweeps show --csv lacks conv2.weight x int:bits=4: $csv"
fi
want=$(awk -v v="$change" 'BEGIN { printf "%.6g", v }')
keys Down Right
wait_for "^ .*conv2\\.weight +int:bits=4 +(Δ|d)cross_entropy $want +bits/weight [0-9.]+"
grep -Eq "^ $bits bits of 4608 weights, " "$screen" || fail "the cell's size is not $bits bits"
grep -Eq 'top1 [0-9.]+ +top5 [0-9.]+ ' "$screen" || fail "the cell's metrics are not shown"
grep -Eq 'kld_mean [0-9.e-]+' "$screen" || fail "the cell's kld_mean is not shown"

# o sorts by sensitivity (the change at int:bits=2: fc.weight is the most
# sensitive of digits-cnn), and back.
sorted=$(printf '%s\n' "$csv" | awk -F, '$2 == "\"int:bits=2\"" { gsub(/"/, "", $1); print $6, $1 }' |
    sort -g -r | awk 'NR == 1 { print $2 }')
keys o
wait_for '^Group \(by s'
[ "$(grid_first)" = "$sorted" ] || fail "sorted by sensitivity, $sorted should come first"
keys o
wait_for '^Group +int:bits=2'
[ "$(grid_first)" = conv1.weight ] || fail "model order should start with conv1.weight"

# ---- the Pareto chart -----------------------------------------------------------------
keys p
wait_for 'Budget \(4\.5bpw, 0\.25x, 1\.5MiB\): 5bpw'
keys C-u
keys -l 5bpw
keys Enter
wait_for 'Pareto: digits-cnn +search 1 of sweep 1' 60
wait_for 'budget 5bpw = 5\.0000 bits/weight +optimum [0-9.]+ bits/weight'
cli searches show 1
opt_bpw=$(printf '%s\n' "$out" | awk '/  \* / { print $3; exit }')
[ -n "$opt_bpw" ] || fail "qlab searches show 1 marks no optimum: $out"
grep -Eq "optimum $opt_bpw bits/weight" "$screen" ||
    fail "the optimum should be at $opt_bpw bits/weight as qlab searches show says"
wait_for "^ point [0-9]+ +optimum +bits/weight $opt_bpw "
# the chart: axes with numbers, the optimum marked on it, the budget line
grep -Eq '^ +-?[0-9.e+-]+(│|\|)' "$screen" || fail "the y axis has no numbers"
grep -Eq '^ +[0-9][0-9.]* +[0-9][0-9.]* .*bits/weight' "$screen" || fail "the x axis has no numbers"
grep -Eq '^ +([^ ]*)?(│|\|).*(◆|O)' "$screen" || fail "the optimum is not marked on the chart"
grep -Eq 'budget 5bpw' "$screen" || fail "the legend lacks the budget"
cp "$screen" "$tmp/pareto.txt"
# Left and Right walk the front
keys Left
wait_for '^ point [0-9]+ +bits/weight'
keys o
wait_for '^ point [0-9]+ +optimum'

# Enter applies the optimum's recipe and returns to the Model screen.
cli searches show 1 --recipe
recipe=$(printf '%s' "$out" | cut -c1-40)
[ -n "$recipe" ] || fail "the optimum has no recipe"
keys Enter
wait_for 'Model: digits-cnn'
wait_for 'recipe of search 1 point [0-9]+ set'
grep -qF "recipe $recipe" "$screen" || fail "the Model screen's recipe is not the optimum's ($recipe...)"

# ---- History: the Sweeps and Searches tabs --------------------------------------------
keys H
wait_for 'History: digits-cnn +\(0 runs, 1 sweep, 1 search\)'
keys t
wait_for 'Id +Status +Mode +Groups +Metric +Points'
wait_for '^ +1 +done +one +tensor +cross_entropy +12/12 '
cp "$screen" "$tmp/history-sweeps.txt"
keys t
wait_for 'Id +Sweep +Budget +Front +Opt\.bits'
wait_for "^ +1 +1 +5bpw +[0-9]+ +$opt_bpw "
keys Enter
wait_for 'Pareto: digits-cnn +search 1 of sweep 1'
keys q
wait_for 'History: digits-cnn'
keys t t
wait_for '^ +1 +done +one +tensor'
keys Enter
wait_for 'Sweep 1: digits-cnn'
wait_for '^ done +points 12/12 '
keys q
wait_for 'History: digits-cnn'
keys q
wait_for 'Model: digits-cnn'
keys q
tui_wait_exit
[ -s "$tmp/tui.stderr" ] && fail "qlab tui wrote to stderr"

# The CLI sees the sweep done with its 12 points.
cli sweeps list --json
flat=$(printf '%s' "$out" | tr -d ' \t\r\n')
case $flat in
*'"id":1,"status":"done"'*) ;;
*) fail "sweeps list --json lacks sweep 1 done: $out" ;;
esac
case $flat in
*'"points_done":12,"points_failed":0,"points_total":12'*) ;;
*) fail "sweeps list --json: sweep 1 should have 12 of 12 points: $out" ;;
esac

# ---- ASCII and monochrome ----------------------------------------------------------
rm -f "$tmp/tui.rc"
tm kill-server >/dev/null 2>&1
tui_launch <<EOF
LC_ALL=C NO_COLOR=1 "$bin" tui "$model" --db "$db"
EOF
wait_for 'Model: digits-cnn'
keys S
wait_for '^ done +points 12/12 '
# the buckets as characters beside the numbers, the legend likewise
for g in conv1 conv2 conv3 fc; do
    grep -Eq "^$g\\.weight( +[.:=*#>] *-?[0-9][0-9.e+-]*){3} *\$" "$screen" ||
        fail "no shade marks beside the numbers of $g.weight without colour"
done
grep -Eq '^ dcross_entropy +[.][.] ' "$screen" || fail "no ASCII legend"
grep -Eq '^conv1\.weight +> +[0-9]' "$screen" || fail "the cursor's cell is not marked '>'"
keys p
wait_for 'Budget'
keys Enter
wait_for 'Pareto: digits-cnn +search 2 of sweep 1' 60
grep -Eq '^ +[^ ]*\|.*O' "$screen" || fail "no optimum on the ASCII chart"
grep -Eq '^ +[^ ]*\|.*\*' "$screen" || fail "no front points on the ASCII chart"
grep -Eq '^ +\+-+\+' "$screen" || fail "no ASCII x axis"
keys q
wait_for 'Sweep 1: digits-cnn'
keys q
wait_for 'Model: digits-cnn'
keys q
tui_wait_exit
[ -s "$tmp/tui.stderr" ] && fail "qlab tui wrote to stderr"

# ---- a language model: asked for its text, cancelled, resumed --------------------------
shared=${QLAB_SHARED_DATA:-../shared/data}
case $shared in
/*) ;;
*) shared=$root/$shared ;;
esac
lm=$shared/stories260k/stories260K.bin
text=$shared/tinystories/eval-32k.txt
if [ ! -f "$lm" ] || [ ! -f "$text" ]; then
    echo "SKIP (part): $shared lacks stories260K or eval-32k.txt: no language-model sweep"
    exit 0
fi
XDG_CACHE_HOME=$tmp/cache
export XDG_CACHE_HOME
rm -f "$tmp/tui.rc"
tm kill-server >/dev/null 2>&1
tui_launch <<EOF
LC_ALL=C.UTF-8 "$bin" tui "$lm" --chunks 40 --db "$db"
EOF
wait_for 'Model: stories260K'
keys n
wait_for 'New sweep of stories260K'
wait_for 'Metric +kld_mean'
wait_for 'Data +a text file, asked for next'
keys Enter
wait_for 'Text file for perplexity:'
keys -l "$text"
keys Enter
wait_for 'Tokens per chunk \(n_ctx\): 512'
keys C-u 1 2 8 Enter
wait_for 'Sweep [0-9]+: stories260K +36 groups x 4 schemes' 120
# the cells fill while it runs; Esc cancels and keeps them
wait_for '^ running .* points [1-9][0-9]*/144 ' 300
keys Escape
wait_for 'sweep [0-9]+ cancelled: [0-9]+/144 points kept; R resumes it' 300
id=$(sed -n 's/.*sweep \([0-9][0-9]*\) cancelled.*/\1/p' "$screen" | head -n 1)
kept=$(sed -n 's/.*cancelled: \([0-9][0-9]*\)\/144.*/\1/p' "$screen" | head -n 1)
[ "$kept" -lt 144 ] || fail "the sweep finished before Esc cancelled it"
wait_for '^ cancelled +points [0-9]+/144 '
keys R
wait_for "resuming sweep $id"
wait_for "sweep $id done: [0-9]+ points computed" 600
wait_for '^ done +points 144/144 '
keys q
wait_for 'Model: stories260K'
keys q
tui_wait_exit
[ -s "$tmp/tui.stderr" ] && fail "qlab tui wrote to stderr"
cli sweeps list --json
flat=$(printf '%s' "$out" | tr -d ' \t\r\n')
case $flat in
*"\"id\":$id,\"status\":\"done\",\"kind\":\"lm\""*) ;;
*) fail "sweeps list --json lacks the resumed sweep $id done: $out" ;;
esac
case $flat in
*'"points_done":144,"points_failed":0,"points_total":144'*) ;;
*) fail "sweeps list --json: sweep $id should have 144 of 144 points: $out" ;;
esac
exit 0
