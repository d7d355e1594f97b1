# qlab — build, run, test and install the quantization workbench.
#
#   make          build qlab, its plugins and the tests into $(BUILD)/
#   make run      build, then open the TUI on the bundled digits-cnn model
#   make test     build, then run every test; ends with "N passed, N failed"
#   make asan     the same tests under AddressSanitizer + UBSan (build-asan/)
#   make install  PREFIX=/usr/local DESTDIR= ; make uninstall
#   make bench    speed against a named peer (see bench/README.md)

PREFIX     ?= /usr/local
DESTDIR    ?=
PKG_CONFIG ?= pkg-config
BUILD      ?= build
CC         ?= cc
CFLAGS     ?= -O2 -g
LDFLAGS    ?=

BINDIR     = $(PREFIX)/bin
LIBDIR     = $(PREFIX)/lib/qlab
INCDIR     = $(PREFIX)/include/qlab
DATADIR    = $(PREFIX)/share/qlab
PCDIR      = $(PREFIX)/lib/pkgconfig

VERSION    = 0.1.0
DIGITS_CSV ?= ../shared/data/digits/digits.csv.gz

# Debian 12 packages everything below comes from; one line, named exactly.
PC_DEPS      = ncursesw sqlite3 libcjson check zlib openblas
APT_PACKAGES = libncurses-dev libsqlite3-dev libcjson-dev check zlib1g-dev pkg-config libopenblas-dev tmux
APT_LINE     = apt-get install -y $(APT_PACKAGES)

WARN = -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
       -Wformat=2 -Wno-format-nonliteral -Werror

# pkg-config is asked once, after the dependency check has run (lazy, memoized).
PKG_CFLAGS = $(eval PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PC_DEPS)))$(PKG_CFLAGS)
PKG_LIBS   = $(eval PKG_LIBS := $(shell $(PKG_CONFIG) --libs ncursesw sqlite3 libcjson zlib openblas))$(PKG_LIBS)
CHECK_LIBS = $(eval CHECK_LIBS := $(shell $(PKG_CONFIG) --libs check))$(CHECK_LIBS)

ifeq ($(SANITIZE),1)
SAN_FLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
endif

ALL_CFLAGS = -std=c11 -D_GNU_SOURCE -pthread $(WARN) $(CFLAGS) $(SAN_FLAGS) \
             -DQLAB_VERSION='"$(VERSION)"' -I. $(PKG_CFLAGS)
ALL_LDFLAGS = -pthread $(LDFLAGS) $(SAN_FLAGS)
SYS_LIBS    = -ldl -lm

# ---- sources ---------------------------------------------------------------
LIB_SRC   = $(wildcard quant/*.c) $(wildcard store/*.c) $(wildcard ui/*.c) \
            $(filter-out app/main.c,$(wildcard app/*.c))
LIB_OBJ   = $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
MAIN_OBJ  = $(BUILD)/obj/app/main.o
PLUGINS   = $(patsubst plugins/%/,$(BUILD)/plugins/%.so,$(wildcard plugins/*/))
TEST_SRC  = $(wildcard tests/check_*.c)
TESTS     = $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
TEST_PLUGINS = $(patsubst tests/plugins/%.c,$(BUILD)/tests/plugins/%.so,$(wildcard tests/plugins/*.c)) \
               $(BUILD)/tests/plugins/ggml_uninit_fp16.so
TRAINER   = $(BUILD)/tools/train_digits
BENCH_BIN = $(patsubst bench/%.c,$(BUILD)/bench/%,$(wildcard bench/*.c))

DEPS_OK = $(BUILD)/.deps-ok

.PHONY: all run test asan install uninstall clean bench deps sample-models
.DEFAULT_GOAL := all

# all: the qlab binary, the built-in plugins and the test programs
all: $(BUILD)/qlab $(PLUGINS) $(TESTS) $(TEST_PLUGINS)

# deps: check the Debian packages; install them when root, else name the command
deps: $(DEPS_OK)
$(DEPS_OK):
	@missing=""; \
	command -v $(PKG_CONFIG) >/dev/null 2>&1 || missing=" pkg-config"; \
	for p in $(PC_DEPS); do $(PKG_CONFIG) --exists $$p 2>/dev/null || missing="$$missing $$p"; done; \
	command -v tmux >/dev/null 2>&1 || missing="$$missing tmux"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "qlab: installing missing packages:$$missing"; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(APT_LINE); } || exit 1; \
	  else \
	    echo "qlab: missing$$missing; install with: sudo $(APT_LINE)" >&2; exit 1; \
	  fi; \
	fi
	@mkdir -p $(@D) && touch $@

$(BUILD)/obj/%.o: %.c | $(DEPS_OK)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libqlab.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/qlab: $(MAIN_OBJ) $(BUILD)/libqlab.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS) $(SYS_LIBS)

# Plugins see only plugins/qlab_plugin.h and link nothing of qlab's.
PLUGIN_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) $(SAN_FLAGS) -fPIC -fvisibility=hidden -Iplugins
.SECONDEXPANSION:
$(BUILD)/plugins/%.so: $$(wildcard plugins/%/*.c) $$(wildcard plugins/%/*.h) plugins/qlab_plugin.h | $(DEPS_OK)
	@mkdir -p $(@D)
	$(CC) $(PLUGIN_CFLAGS) -shared -o $@ $(filter %.c,$^) $(ALL_LDFLAGS) -lm

$(BUILD)/tests/plugins/%.so: tests/plugins/%.c $(wildcard tests/plugins/*.h) plugins/qlab_plugin.h | $(DEPS_OK)
	@mkdir -p $(@D)
	$(CC) $(PLUGIN_CFLAGS) -shared -o $@ $< $(ALL_LDFLAGS) -lm

# The ggml plugin as a ggml program that skipped ggml_init() decodes fp16 (all +0):
# how the shared reference vectors were made, so tests can reproduce them exactly.
$(BUILD)/tests/plugins/ggml_uninit_fp16.so: $(wildcard plugins/ggml/*.c) $(wildcard plugins/ggml/*.h) plugins/qlab_plugin.h | $(DEPS_OK)
	@mkdir -p $(@D)
	$(CC) $(PLUGIN_CFLAGS) -DQLAB_GGML_EMULATE_UNINIT_FP16 -shared -o $@ $(filter %.c,$^) $(ALL_LDFLAGS) -lm

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(BUILD)/obj/tests/test_util.o \
                $(BUILD)/obj/tests/scheme_util.o $(BUILD)/libqlab.a
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS) $(CHECK_LIBS) $(SYS_LIBS)

$(BUILD)/tools/%: $(BUILD)/obj/sample-models/%.o $(BUILD)/libqlab.a
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS) $(SYS_LIBS)

$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(BUILD)/libqlab.a
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS) $(SYS_LIBS)

# run: build, then open the TUI on the bundled digits-cnn sample model
run: $(BUILD)/qlab $(PLUGINS)
	$(BUILD)/qlab tui sample-models/digits-cnn

# test: build, then run every Check suite, the CLI and the TUI tests
test: all
	@sh tests/run_tests.sh $(BUILD)

# asan: the whole test suite under AddressSanitizer and UBSan, one process per suite
asan:
	@$(MAKE) --no-print-directory BUILD=build-asan SANITIZE=1 CFLAGS="-O1 -g" all
	@CK_FORK=no QLAB_SANITIZE=1 sh tests/run_tests.sh build-asan

# sample-models: retrain the bundled digits models (deterministic; needs ../shared/data or python3-sklearn's CSV)
sample-models: $(TRAINER)
	$(TRAINER) $(DIGITS_CSV) sample-models

# bench: measure speed against the named peers (prints ratios; never part of test)
bench: $(BUILD)/qlab $(PLUGINS) $(BENCH_BIN)
	@sh bench/run.sh $(BUILD)

# install: the binary, built-in plugins, the plugin SDK (header, qlab-plugin.pc) and the sample models
install: $(BUILD)/qlab $(PLUGINS)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR)/plugins $(DESTDIR)$(INCDIR) $(DESTDIR)$(DATADIR) $(DESTDIR)$(PCDIR)
	install -m 755 $(BUILD)/qlab $(DESTDIR)$(BINDIR)/qlab
	install -m 755 $(filter-out %/example.so,$(PLUGINS)) $(DESTDIR)$(LIBDIR)/plugins/
	install -m 644 plugins/qlab_plugin.h $(DESTDIR)$(INCDIR)/qlab_plugin.h
	printf 'prefix=%s\nincludedir=$${prefix}/include/qlab\nplugindir=$${prefix}/lib/qlab/plugins\n\nName: qlab-plugin\nDescription: ABI header for qlab quantization scheme plugins\nVersion: %s\nCflags: -I$${includedir}\n' \
	  '$(PREFIX)' '$(VERSION)' > $(DESTDIR)$(PCDIR)/qlab-plugin.pc
	install -d $(DESTDIR)$(DATADIR)/sample-models
	cp -R sample-models/digits sample-models/digits-mlp sample-models/digits-cnn sample-models/README.md $(DESTDIR)$(DATADIR)/sample-models/

# uninstall: remove what install put in place
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/qlab $(DESTDIR)$(INCDIR)/qlab_plugin.h $(DESTDIR)$(PCDIR)/qlab-plugin.pc
	rm -rf $(DESTDIR)$(LIBDIR) $(DESTDIR)$(DATADIR)
	-rmdir $(DESTDIR)$(INCDIR) 2>/dev/null

# clean: remove both build folders
clean:
	rm -rf build build-asan

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
