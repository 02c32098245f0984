# loadParrot — build, test, demo and benchmark. `make help` lists the targets.
.DEFAULT_GOAL := all
SHELL := /bin/bash

DEB_PKGS := build-essential pkg-config libluajit-5.1-dev luajit libuv1-dev node-llhttp \
	libmbedtls-dev libzmq3-dev libmsgpack-dev lua-cjson libpcre2-dev libexpat1-dev \
	libxml2-dev zlib1g-dev libedit-dev lua-busted
TEST_PKGS := nginx-light openssl python3 curl iproute2 tsung
# make bench also uses TEST_PKGS (nginx-light, openssl, tsung, python3, curl)
BENCH_PKGS := wrk nghttp2-client time util-linux
FMT_PKGS := clang-format
LINT_PKGS := cppcheck

CC ?= cc
LLHTTP_DIR := /usr/share/llhttp
PKGS := luajit libuv libpcre2-8 libxml-2.0 zlib msgpack libzmq expat
CFLAGS_BASE := -std=gnu11 -O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE -Isrc -Ibuild \
	-I/usr/share/include/llhttp $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lmbedtls -lmbedx509 -lmbedcrypto \
	-ledit -lpthread -lm -ldl
LDFLAGS := -Wl,-E

ifeq ($(SAN),1)
  BUILD := build/san
  CFLAGS_BASE += -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  LDFLAGS += -fsanitize=address,undefined
else
  BUILD := build/rel
endif
# llhttp scans header values 16 bytes at a time with SSE4.2 when compiled for it: on a machine that
# has it (parrot then checks at start-up that the CPU it runs on has it too). LLHTTP_SSE42=0: never.
LLHTTP_SSE42 ?= $(shell grep -qw sse4_2 /proc/cpuinfo 2>/dev/null && echo 1)
ifeq ($(LLHTTP_SSE42),1)
  CFLAGS_BASE += -DPARROT_LLHTTP_SSE42
  LLHTTP_CFLAGS := -msse4.2
endif
CFLAGS := $(CFLAGS_BASE) $(EXTRA_CFLAGS)

SRCS := $(wildcard src/*.c)
OBJS := $(patsubst src/%.c,$(BUILD)/%.o,$(SRCS))
LIB_OBJS := $(filter-out $(BUILD)/main.o,$(OBJS))
LLHTTP_OBJS := $(BUILD)/llhttp_llhttp.o $(BUILD)/llhttp_api.o $(BUILD)/llhttp_http.o
LUA_SRCS := $(sort $(wildcard lua/parrot/*.lua))
C_TESTS := $(patsubst spec/c/%.c,$(BUILD)/spec/%,$(wildcard spec/c/test_*.c))

.PHONY: parrot all deps deps-test deps-bench test test-programs demo bench fmt lint clean help fuzz

# pkg-config is read when make parses this file, so on a fresh machine the build runs in a sub-make
# started after the packages are installed.
all: deps
	@$(MAKE) --no-print-directory parrot

help:
	@echo "make deps | make | make test | make demo | make bench | make fuzz | make fmt | make lint | make clean | make SAN=1 test"

# Install what is missing (quiet and quick when everything is there).
define install_missing
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
endef

deps:
	$(call install_missing,$(DEB_PKGS))
deps-test: deps
	$(call install_missing,$(TEST_PKGS))
deps-bench: deps-test
	$(call install_missing,$(BENCH_PKGS))

# ./parrot is the binary of the last build asked for (release, or SAN=1): copied whenever it differs.
parrot: $(BUILD)/parrot
	@cmp -s $< $@ || { cp $< $@.tmp && mv -f $@.tmp $@ && echo "./parrot is $<"; }

$(BUILD)/parrot: $(OBJS) $(LLHTTP_OBJS) $(BUILD)/luamods.o
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%.o: src/%.c $(wildcard src/*.h) | $(BUILD)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/llhttp_%.o: $(LLHTTP_DIR)/%.c | $(BUILD)
	$(CC) $(filter-out -Wall -Wextra -Werror,$(CFLAGS)) $(LLHTTP_CFLAGS) -w -c -o $@ $<

# The Lua library, compiled to LuaJIT bytecode and linked in: the binary needs no source tree.
$(BUILD)/luamods.c: $(LUA_SRCS) src/embed-lua.sh | $(BUILD)
	bash src/embed-lua.sh $@ $(LUA_SRCS)
$(BUILD)/luamods.o: $(BUILD)/luamods.c
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD):
	mkdir -p $(BUILD) $(BUILD)/spec

$(BUILD)/spec/test_%: spec/c/test_%.c $(LIB_OBJS) $(LLHTTP_OBJS) $(BUILD)/luamods.o | $(BUILD)
	$(CC) $(CFLAGS) -Ispec/c $(LDFLAGS) -o $@ $^ $(LDLIBS)

test: deps-test
	@$(MAKE) --no-print-directory parrot test-programs
	@BUILD=$(BUILD) bash spec/run.sh

test-programs: $(C_TESTS)

demo: deps
	@$(MAKE) --no-print-directory parrot
	@bash spec/demo.sh

# One table: parrot beside wrk, h2load and Tsung, memory per VU, latency accuracy, the queen's
# merge; about 8 minutes. A missed goal reads FAIL in the table, not a failed make.
# `RUNS=1 SECS=3 make bench` for a quick look; spec/bench/bench.sh lists the other settings.
bench: deps-bench
	@$(MAKE) --no-print-directory parrot
	@bash spec/bench/bench.sh

# libFuzzer targets under spec/fuzz/ (FUZZ_SECONDS each, default 60); make test replays their corpora.
fuzz: deps
	@bash spec/fuzz/fuzz.sh

# fmt and lint install their tool when it is missing, as deps does.
fmt:
	$(call install_missing,$(FMT_PKGS))
	clang-format -i src/*.c src/*.h spec/c/*.c spec/c/*.h

lint:
	$(call install_missing,$(LINT_PKGS))
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	  --suppress=missingIncludeSystem --inline-suppr -Isrc src

clean:
	rm -rf build parrot
