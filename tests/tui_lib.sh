# tui_lib.sh — shared plumbing of the tmux tests of `qlab tui` (tests/test_tui*.sh), sourced, never run.
# shellcheck shell=sh
#
# Use, from the repository root, in a test run as `sh tests/test_X.sh BUILD_DIR`:
#     tui_name=tui_x      # messages say "FAIL: test_tui_x: ..."; tmp and socket names use tui-x
#     . tests/tui_lib.sh  # sets $bin and $root; skips without tmux, fails without qlab
#     ...                 # the test's own skips (its input files)
#     tui_setup           # $tmp (removed at exit unless under $QLAB_TMP), tmux socket, $screen
#     tui_launch <<EOF    # runs the command line in an 80x24 pane
# and then drives it with keys, press and wait_for; a test that uses
# scheme_pick_steps defines plugins_text (its `qlab plugins` listing).

: "${tui_name:?set tui_name before sourcing tests/tui_lib.sh}"

build=${1:-build}
case $build in
/*) ;;
*) build=$(pwd)/$build ;;
esac
bin=$build/qlab
root=$(pwd)

command -v tmux >/dev/null 2>&1 || { echo "SKIP: tmux is not installed"; exit 77; }
[ -x "$bin" ] || { echo "FAIL: $bin is not built" >&2; exit 1; }

# ---- setup ------------------------------------------------------------------------
# tui_setup: the temporary folder $tmp, a private tmux server, $screen
tui_setup() {
    tag=$(printf '%s' "$tui_name" | tr _ -)
    if [ -n "$QLAB_TMP" ]; then
        tmp=$QLAB_TMP/$tag-test.$$
        mkdir -p "$tmp" || exit 1
    else
        tmp=$(mktemp -d "${TMPDIR:-/tmp}/qlab-$tag.XXXXXX") || exit 1
    fi
    sock=qlab-$tag-test-$$
    unset TMUX
    trap tui_cleanup EXIT
    trap 'exit 1' INT TERM
    screen=$tmp/screen.txt
}

tm() { tmux -L "$sock" "$@"; }

# shellcheck disable=SC2317 # run by the EXIT trap
tui_cleanup() {
    tm kill-server >/dev/null 2>&1
    if [ -z "$QLAB_TMP" ]; then rm -rf "$tmp"; fi
}

# tui_launch: runs the command line read from stdin (from the repository
# root, stderr to $tmp/tui.stderr) in a detached 80x24 pane; its exit
# status lands in $tmp/tui.rc when it ends.
tui_launch() {
    cmd=$(cat)
    cat >"$tmp/run.sh" <<EOF
cd "$root" || exit 1
$cmd 2>"$tmp/tui.stderr"
echo \$? >"$tmp/tui.rc.part"
mv "$tmp/tui.rc.part" "$tmp/tui.rc"
EOF
    tm new-session -d -x 80 -y 24 "sh '$tmp/run.sh'" || fail "cannot start tmux"
}

# ---- helpers ------------------------------------------------------------------
fail() {
    echo "FAIL: test_$tui_name: $*" >&2
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

# wait_for REGEX [SECONDS]: polls the pane until a line matches (grep -E)
# and the screen has settled: the same in two captures 0.1 s apart, so the
# checks that follow see a whole redraw, not the first lines of one (a
# slow build, ASan, can be caught mid-draw). A screen that never settles
# (a live progress line) is taken as it is after 5 tries.
wait_for() {
    tries=$(( ${2:-20} * 10 ))
    unsettled=0
    while [ "$tries" -gt 0 ]; do
        capture
        if grep -Eq -- "$1" "$screen"; then
            cp "$screen" "$screen.prev"
            sleep 0.1
            capture
            if grep -Eq -- "$1" "$screen"; then
                cmp -s "$screen" "$screen.prev" && return 0
                unsettled=$((unsettled + 1))
                [ "$unsettled" -ge 5 ] && return 0
            fi
        else
            sleep 0.1
        fi
        tries=$((tries - 1))
    done
    fail "timed out waiting for /$1/"
}

# wait_gone REGEX [SECONDS]: polls until no line matches.
wait_gone() {
    tries=$(( ${2:-20} * 10 ))
    while [ "$tries" -gt 0 ]; do
        capture
        grep -Eq -- "$1" "$screen" || return 0
        sleep 0.1
        tries=$((tries - 1))
    done
    fail "timed out waiting for /$1/ to go"
}

keys() {
    tm send-keys "$@" || fail "tmux send-keys $*"
}

# presses KEY n times in one send-keys
press() {
    k=$1 n=$2 args=""
    while [ "$n" -gt 0 ]; do
        args="$args $k"
        n=$((n - 1))
    done
    # shellcheck disable=SC2086 # one word per key
    [ -z "$args" ] || keys $args
}

# scheme_pick_steps PLUGIN SCHEME: j presses from float to the scheme in
# the picker, found in the output of the test's plugins_text (`qlab
# plugins`), which lists the same rows in the same order (plugins gain
# schemes while others work on them).
scheme_pick_steps() {
    plugins_text | awk -v p="$1" -v s="$2" '
        /^[^ ]/ && !/^refused:/ { pl = $1 }
        /^    [^ ]/ { n++; if (pl == p && $1 == s) { print n; exit } }'
}

# param_row NAME: 0-based row of a parameter in the open parameter editor
param_row() {
    capture
    sed -E 's/^[^│|]*(│|\|)//' "$screen" | awk -v k="$1" '
        /^  [a-z0-9_]+ / { if ($1 == k) { print n + 0; exit } n++ }'
}

# ---- the end ----------------------------------------------------------------------
# tui_wait_exit: after the last q, waits for qlab to end and wants status 0
tui_wait_exit() {
    tries=200
    while [ ! -f "$tmp/tui.rc" ] && [ "$tries" -gt 0 ]; do
        sleep 0.1
        tries=$((tries - 1))
    done
    [ -f "$tmp/tui.rc" ] || { capture; fail "qlab did not exit after q"; }
    rc=$(cat "$tmp/tui.rc")
    [ "$rc" = 0 ] || fail "qlab tui exited with $rc"
}

# runs_list_json DB: `qlab runs list --json` of DB into $json, and into
# $flat without white space, for the test to read
runs_list_json() {
    json=$("$bin" runs list --db "$1" --json 2>"$tmp/cli.stderr") || {
        cat "$tmp/cli.stderr" >&2
        fail "qlab runs list failed"
    }
    # shellcheck disable=SC2034 # read by the test
    flat=$(printf '%s' "$json" | tr -d ' \t\r\n')
}
