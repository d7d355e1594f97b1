#!/bin/sh
# test_sdk.sh — the plugin SDK end to end: `make install` into a temporary
# prefix, build plugins/example out of tree with the one cc line the docs
# give (pkg-config qlab-plugin), then check and use it with the installed qlab.
# Usage: sh tests/test_sdk.sh BUILD_DIR (from the repository root).
build=${1:-build}
tmp=${QLAB_TMP:-/tmp}/sdk.$$
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/src"
fail() { echo "test_sdk: $*" >&2; exit 1; }

# The same flags the build was made with, so install never relinks it differently.
if [ -n "$QLAB_SANITIZE" ]; then
    set -- SANITIZE=1 CFLAGS="-O1 -g"
else
    set --
fi
make -s --no-print-directory BUILD="$build" "$@" PREFIX="$tmp/prefix" install >"$tmp/install.log" 2>&1 ||
    { cat "$tmp/install.log" >&2; fail "make install failed"; }
[ -f "$tmp/prefix/include/qlab/qlab_plugin.h" ] || fail "header not installed"
[ -f "$tmp/prefix/lib/pkgconfig/qlab-plugin.pc" ] || fail "qlab-plugin.pc not installed"

# Out of tree: only the installed header, found through pkg-config.
cp plugins/example/example.c "$tmp/src/"
cd "$tmp/src" || fail "no temp dir"
PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig" || exit 1
export PKG_CONFIG_PATH
cflags=$(pkg-config --cflags qlab-plugin) || fail "pkg-config does not know qlab-plugin"
[ "$(pkg-config --variable=plugindir qlab-plugin)" = "$tmp/prefix/lib/qlab/plugins" ] ||
    fail "plugindir is $(pkg-config --variable=plugindir qlab-plugin)"
# shellcheck disable=SC2086
cc -std=c11 -O2 -fPIC -shared -fvisibility=hidden $cflags -o example.so example.c -lm ||
    fail "the documented cc line does not build the example"
cd - >/dev/null || exit 1

qlab="$tmp/prefix/bin/qlab"
"$qlab" plugins check "$tmp/src/example.so" >"$tmp/check.txt" 2>&1 ||
    { cat "$tmp/check.txt" >&2; fail "plugins check fails on the example"; }
grep -q "all checks passed" "$tmp/check.txt" || fail "no verdict from plugins check"
# The installed qlab finds its own plugins and the example by --plugin.
"$qlab" plugins --plugin "$tmp/src/example.so" --json >"$tmp/plugins.json" || fail "plugins failed"
for p in '"example"' '"int"' '"prune"'; do
    grep -q "\"name\":.*$p" "$tmp/plugins.json" || fail "qlab plugins does not list $p"
done
"$qlab" info "$tmp/prefix/share/qlab/sample-models/digits-mlp" --plugin "$tmp/src/example.so" \
    --quant '*=log2:bits=5' --json >"$tmp/info.json" || fail "info with the example scheme failed"
grep -q '"scheme":.*"log2"' "$tmp/info.json" || fail "the example scheme was not applied"
exit 0
