#!/bin/sh
# test_tui_lm.sh — drives `qlab tui` on a language model (stories260K) in a detached 80x24 tmux pane.
#
# Usage (from the repository root): sh tests/test_tui_lm.sh BUILD_DIR
# Exit 0 pass, 1 fail, 77 skip (no tmux, or no shared data).
# Covers the block tree (expand, collapse), the role view (one scheme for
# ffn_down in every block), a perplexity run against the float reference
# (3.7615 at n_ctx 128, as llama-perplexity prints it), greedy generation,
# History and the run's record. Every wait polls `tmux capture-pane` for
# the expected text until a deadline; nothing relies on a fixed sleep.

tui_name=tui_lm
. tests/tui_lib.sh
shared=${QLAB_SHARED_DATA:-../shared/data}
case $shared in
/*) ;;
*) shared=$root/$shared ;;
esac
model=$shared/stories260k/stories260K.bin
text=$shared/tinystories/eval-32k.txt

if [ ! -f "$model" ] || [ ! -f "$text" ]; then
    echo "SKIP: $shared lacks stories260k/stories260K.bin or tinystories/eval-32k.txt"
    exit 77
fi

tui_setup
db=$tmp/lm.db
unset QLAB_PLUGIN_PATH
# the float reference log-probabilities are cached: never in the user's cache
XDG_CACHE_HOME=$tmp/cache
export XDG_CACHE_HOME

# ---- helpers ------------------------------------------------------------------
# table_row REGEX: 0-based row of the first table line matching REGEX,
# counted from the line under the column titles (HEADER_REGEX in $head).
table_row() {
    capture
    awk -v h="$head" -v r="$1" '
        started && $0 ~ r { print n; exit }
        started { n++ }
        $0 ~ h { started = 1; n = 0 }' "$screen"
}

# plugins_text: the listing of `qlab plugins`, for scheme_pick_steps
plugins_text() {
    "$bin" plugins 2>"$tmp/cli.stderr"
}

# ---- start ------------------------------------------------------------------------
tui_launch <<EOF
"$bin" tui "$model" --data "$text" --ctx 128 --db "$db"
EOF

# The Model screen: the architecture, the top-level tensors and the blocks.
wait_for 'Model: stories260K'
wait_for '^ llama +dim 64 +layers 5 +heads 8 \(4 kv\) +vocab 512 +context 512'
wait_for '^ +token_embd\.weight +\[512, 64\] +32768 +float '
for b in 0 1 2 3 4; do
    grep -Eq "^[^ ]+ blk\\.$b +9 tensors +45440 +float +178K " "$screen" ||
        fail "no collapsed row for blk.$b with 9 tensors"
done
grep -Eq '^ +output_norm\.weight +\[64\] ' "$screen" || fail "no output_norm.weight row"
grep -Eq 'attn_q\.weight' "$screen" && fail "blocks should start collapsed"
grep -Eq 'F1 ?Help .*v ?View .*g ?Generate' "$screen" || fail "function bar lacks View or Generate"

# Help lists the tree and role keys.
keys '?'
wait_for 'Help: Model'
grep -Eq ' v +by block / by role' "$screen" || fail "help lacks the v key"
keys Escape
wait_for '^Tensor +Shape +Params +Scheme'

# Expand blk.0 (Enter) and see its tensors under it; Left closes it again.
head='^Tensor +Shape'
row=$(table_row '^[^ ]+ blk\.0 ')
[ -n "$row" ] || fail "no blk.0 row"
keys Home
press j "$row"
keys Enter
wait_for '^ +attn_q\.weight +\[64, 64\] +4096 +float '
for t in attn_norm attn_k attn_v attn_output ffn_norm ffn_gate ffn_up ffn_down; do
    grep -Eq "^ +$t\\.weight " "$screen" || fail "blk.0 lacks $t.weight"
done
keys j j Left
wait_gone 'attn_q\.weight'
# every block open at once, then closed
keys '*'
wait_for '^[^ ]+ blk\.1 +9 tensors'
[ "$(grep -Ec '^ +attn_q\.weight ' "$screen")" -ge 2 ] || fail "* did not open every block"
keys '*'
wait_gone 'attn_q\.weight'
grep -Eq '^[^ ]+ blk\.4 +9 tensors' "$screen" || fail "* did not close every block"

# The role view: ffn_down for all five blocks, set in one go.
keys v
wait_for '^Role +Shape +Params +Scheme'
wait_for '^ffn_down +5x \[64, 172\] +55040 +float '
grep -Eq '^attn_q +5x \[64, 64\] ' "$screen" || fail "role view lacks attn_q"
grep -Eq '^token_embd +\[512, 64\] ' "$screen" || fail "role view lacks token_embd"
head='^Role +Shape'
row=$(table_row '^ffn_down ')
[ -n "$row" ] || fail "no ffn_down role row"
keys Home
press j "$row"
keys Enter
wait_for "Scheme for 'blk\\.\\*\\.ffn_down\\.weight'"
steps=$(scheme_pick_steps int int)
[ -n "$steps" ] || fail "qlab plugins lists no int/int scheme"
keys g
press j "$steps"
keys Enter
wait_for 'int/int for blk\.\*\.ffn_down\.weight'
row=$(param_row bits)
[ -n "$row" ] || fail "no 'bits' row in the parameter editor of int"
keys g
press j "$row"
keys C-u 4 Enter
wait_for 'bits +4 +2\.\.8'
keys G Enter
wait_for '^ffn_down +5x \[64, 172\] +55040 +int:bits=4 +[0-9.]+K +[0-9.]+ *$'
wait_for 'blk\.\*\.ffn_down\.weight=int: 5 tensors'
grep -Eq 'recipe blk\.\*\.ffn_down\.weight=int:bits=4' "$screen" || fail "the recipe line lacks the rule"
grep -Eq '^ffn_gate +5x .* float ' "$screen" || fail "ffn_gate should still be float"
# the block view sums it: one of nine tensors in each block
keys v
wait_for '^[^ ]+ blk\.0 +9 tensors +[0-9]+ +int:bits=4 \(1/9\) '

# Evaluate: perplexity against the float reference (3.7615 at n_ctx 128).
keys r
wait_for 'run #[0-9]+ +done +PPL [0-9]+\.[0-9]{4} \(float 3\.7615\)' 120
id=$(sed -n 's/.*run #\([0-9][0-9]*\) *done.*/\1/p' "$screen" | head -n 1)
[ -n "$id" ] || fail "no run id on the Model screen"
grep -Eq 'ln ratio [0-9.]+ +same top [0-9.]+%' "$screen" || fail "no ln ratio / same top"
grep -Eq 'KLD [0-9.]+ +p99 [0-9.]+ ' "$screen" || fail "no KLD mean / p99"
grep -Eq 'rms [0-9.]+%' "$screen" || fail "no delta p"
# R asks for the text file and n_ctx again, prefilled; Esc leaves it
keys R
wait_for 'Text file for perplexity: .*eval-32k\.txt'
keys Enter
wait_for 'Tokens per chunk \(n_ctx\): 128'
keys Escape
wait_gone 'Tokens per chunk'

# Generate 32 tokens from BOS: the float text is a story.
keys g
wait_for 'Prompt \(empty: start from BOS\):'
keys Enter
wait_for 'Tokens to generate: 128'
keys C-u 3 2 Enter
wait_for 'Generation: stories260K' 60
wait_for '(first [0-9]+|all 32) tokens identical'
grep -Eq 'float 32 of 32' "$screen" || fail "the float model did not generate 32 tokens"
awk 'found { print; exit } /^Float +32 tokens/ { found = 1 }' "$screen" |
    grep -q '^ Once upon a time' || fail "the float text does not start with 'Once upon a time'"
grep -Eq '^Quantized +[0-9]+ tokens' "$screen" || fail "no quantized text"
keys q
wait_for 'Model: stories260K'

# History: the run with its perplexity; Enter shows the metrics.
keys H
wait_for 'History: stories260K'
wait_for 'PPL +[^ ]+PPL% +KLD +Same%'
wait_for "^ *$id +done +blk\\.\\*\\.ffn_down.* [0-9]+\\.[0-9]{4} +\\+[0-9.]+ +[0-9.]+ +[0-9.]+ *\$"
keys Enter
wait_for "Run #$id: stories260K"
wait_for 'PPL [0-9.]+ \(float 3\.7615, '
grep -Eq 'KLD mean [0-9.]+ +median [0-9.]+ +p99 [0-9.]+ +max [0-9.]+' "$screen" ||
    fail "run detail lacks the KL divergence"
grep -Eq 'same top [0-9.]+%' "$screen" || fail "run detail lacks same top"
grep -Eq 'tokens 7686' "$screen" || fail "run detail: 7686 scored tokens expected"
grep -Eq '^blk\.0\.ffn_down\.weight +int +bits=4' "$screen" ||
    { keys G; wait_for '^blk\.4\.ffn_down\.weight +int +bits=4'; }
keys q
wait_for 'History: stories260K'
keys q
wait_for 'Model: stories260K'
keys q

# The process exits cleanly.
tui_wait_exit
[ -s "$tmp/tui.stderr" ] && fail "qlab tui wrote to stderr"

# The CLI sees the run: kind lm, done, the recipe, float PPL 3.7615.
runs_list_json "$db"
case $flat in
*"\"id\":$id,\"status\":\"done\",\"kind\":\"lm\""*) ;;
*) fail "runs list --json lacks run $id with status done and kind lm: $json" ;;
esac
case $flat in
*'"recipe":"blk.*.ffn_down.weight=int:bits=4"'*) ;;
*) fail "runs list --json: run $id does not have the recipe set in the TUI: $json" ;;
esac
case $flat in
*'"float":{"ppl":3.7615'*) ;;
*) fail "runs list --json: run $id lacks float ppl 3.7615...: $json" ;;
esac
exit 0
