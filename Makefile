# MantisDB core: build, test and benchmark.
#
#   make run     build everything and run the main job
#   make test    build everything and run every test (C, sanitizers, valgrind, Go)
#
# Both install missing Debian packages first (make deps). Everything built
# lands in build/. A build "variant" selects compiler flags and a directory:
#   release  build/           -O2, mimalloc (the library users link)
#   asan     build/asan/      AddressSanitizer + UndefinedBehaviorSanitizer
#   tsan     build/tsan/      ThreadSanitizer
#   debug    build/debug/     -O1, for valgrind memcheck
# Sanitizer and valgrind variants allocate with the C library's malloc
# (MT_LIBC_MALLOC) so that every block is tracked; see csrc/mt_alloc.h.

SHELL := /bin/bash
.DEFAULT_GOAL := lib

CC ?= gcc
GO ?= go
PREFIX ?= /usr/local
export PATH := /usr/local/go/bin:$(PATH)

DEB_PACKAGES := libck-dev libmimalloc-dev libcriterion-dev liburcu-dev \
	pkg-config valgrind clang-format clang-tidy zstd curl wrk clang-14 libfuzzer-14-dev

VARIANT ?= release
ifeq ($(VARIANT),release)
  VDIR := build
  VFLAGS := -O2 -DNDEBUG
  VLDFLAGS :=
else ifeq ($(VARIANT),asan)
  VDIR := build/asan
  VFLAGS := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
	-fno-sanitize-recover=undefined -DMT_LIBC_MALLOC
  VLDFLAGS := -fsanitize=address,undefined
else ifeq ($(VARIANT),tsan)
  VDIR := build/tsan
  VFLAGS := -O1 -fno-omit-frame-pointer -fsanitize=thread -DMT_LIBC_MALLOC
  VLDFLAGS := -fsanitize=thread
else ifeq ($(VARIANT),debug)
  VDIR := build/debug
  VFLAGS := -O1 -DMT_LIBC_MALLOC
  VLDFLAGS :=
else
  $(error unknown VARIANT $(VARIANT): release, asan, tsan or debug)
endif

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wno-unused-parameter
CFLAGS_ALL := -std=gnu11 -g -pthread -D_GNU_SOURCE -fPIC $(WARN) -Ibindings -Icsrc \
	$(VFLAGS) $(EXTRA_CFLAGS)
LIBS := -lck -lmimalloc -lpthread -lm

LIB_SRC := $(sort $(wildcard csrc/*.c))
LIB_OBJ := $(LIB_SRC:csrc/%.c=$(VDIR)/obj/%.o)
LIB_A := $(VDIR)/libmantis.a

TEST_SRC := $(sort $(wildcard tests/c/*.c))
TEST_BIN := $(VDIR)/test/mantis_tests

BENCH_SRC := $(sort $(wildcard bench/c/*.c))
BENCH_BIN := build/bench/bench-c
BENCH_JSON := build/bench/bench-c.json

HDRS := $(wildcard bindings/*.h csrc/*.h tests/c/*.h bench/c/*.h)

.PHONY: all lib deps test test-c test-asan test-tsan test-valgrind test-go \
	test-bench-go lint fmt fmt-check tidy bench bench-c run install clean \
	go-build testdata

all: lib

# ------------------------------------------------------------------ deps
# Installs what is missing, once. Needs root or sudo for apt-get.
deps: build/.deps-ok
build/.deps-ok:
	@missing=""; for p in $(DEB_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "deps: installing$$missing"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=""; \
		elif command -v sudo >/dev/null; then SUDO="sudo"; \
		else echo "deps: missing$$missing and no root or sudo to install them; install them with apt-get" >&2; exit 1; fi; \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null || \
		{ echo "deps: apt-get install$$missing failed" >&2; exit 1; }; \
	fi; \
	command -v $(GO) >/dev/null || { echo "deps: Go is not installed (need Go 1.26 at /usr/local/go or on PATH)" >&2; exit 1; }
	@mkdir -p build && touch $@

# ------------------------------------------------------------------ library
lib: deps
	@$(MAKE) --no-print-directory $(LIB_A)

$(VDIR)/obj/%.o: csrc/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c $< -o $@

$(LIB_A): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

# ------------------------------------------------------------------ C tests
# One Criterion binary per variant from every tests/c/*.c.
# Criterion cannot start under ThreadSanitizer (its sandbox's arena collides
# with TSan's shadow memory), so the TSan build compiles the same sources
# against the in-process runner in tests/c/tsan/ (see its criterion.h).
ifeq ($(VARIANT),tsan)
  TEST_RUNNER := -Itests/c/tsan tests/c/tsan/runner.c
  TEST_LIBS :=
else
  TEST_RUNNER :=
  TEST_LIBS := -lcriterion
endif

$(TEST_BIN): $(TEST_SRC) $(LIB_A) $(HDRS) $(wildcard tests/c/tsan/*.c tests/c/tsan/criterion/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Wno-missing-prototypes $(TEST_RUNNER) -Itests/c \
		-DMT_TESTDATA='"$(CURDIR)/testdata"' \
		$(TEST_SRC) $(LIB_A) $(VLDFLAGS) $(TEST_LIBS) $(LIBS) -o $@

test-bin: deps
	@$(MAKE) --no-print-directory $(TEST_BIN)

test-c: deps testdata
	@$(MAKE) --no-print-directory VARIANT=release test-bin
	build/test/mantis_tests --jobs 2

test-asan: deps testdata
	@$(MAKE) --no-print-directory VARIANT=asan test-bin
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
		MANTIS_WORKER_ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		MANTIS_TEST_SCALE=4 build/asan/test/mantis_tests --jobs 2

test-tsan: deps testdata
	@$(MAKE) --no-print-directory VARIANT=tsan test-bin
	TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
		MANTIS_TEST_SCALE=8 setarch $$(uname -m) -R build/tsan/test/mantis_tests --jobs 2

# valgrind memcheck. Criterion runs each test in a child process whose exit
# status does not reach the runner, so every process logs to its own file
# (--quiet: only errors and leaks are written) and any non-empty log fails.
VG_LOGS := build/debug/valgrind
test-valgrind: deps testdata
	@$(MAKE) --no-print-directory VARIANT=debug test-bin
	@rm -rf $(VG_LOGS) && mkdir -p $(VG_LOGS)
	MANTIS_TEST_SCALE=16 valgrind --quiet --trace-children=yes --leak-check=full \
		--show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect \
		--log-file=$(VG_LOGS)/%p.log build/debug/test/mantis_tests --jobs 2
	@bad=$$(find $(VG_LOGS) -name '*.log' -size +0c); \
	if [ -n "$$bad" ]; then cat $$bad; echo "valgrind: errors or leaks (logs in $(VG_LOGS))" >&2; exit 1; fi; \
	echo "valgrind: no errors, no leaks"

# The gli trace, decompressed from ../shared with its citation (testdata/).
testdata: testdata/gli.trace
testdata/gli.trace:
	@test -f $@ || { echo "testdata/gli.trace is missing" >&2; exit 1; }

# ------------------------------------------------------------------ Go
GO_TAGS_C := -tags ccore

go-build: lib
	$(GO) build ./...
	$(GO) build $(GO_TAGS_C) ./...
	CGO_ENABLED=0 $(GO) build ./...

test-go: lib
	$(GO) vet ./...
	$(GO) vet $(GO_TAGS_C) ./...
	$(GO) test -count=1 ./...
	$(GO) test -count=1 $(GO_TAGS_C) ./...
	CGO_ENABLED=0 $(GO) test -count=1 ./...
	$(GO) test -count=1 -race -short ./...
	$(GO) test -count=1 -race -short $(GO_TAGS_C) ./...

# The peers' module under bench/ (kept apart so users do not inherit it).
test-bench-go: lib
	@if [ -f bench/go.mod ]; then cd bench && $(GO) vet $(GO_TAGS_C) ./... && \
		$(GO) test -count=1 $(GO_TAGS_C) ./...; fi

# ------------------------------------------------------------------ lint
CLANG_FORMAT ?= clang-format
CLANG_TIDY ?= clang-tidy
C_FILES := $(wildcard csrc/*.[ch] bindings/*.h tests/c/*.[ch] tests/c/tsan/*.c tests/c/tsan/criterion/*.h bench/c/*.[ch])

fmt:
	$(CLANG_FORMAT) -i $(C_FILES)
	gofmt -w go bench

fmt-check: deps
	@bad=$$(for f in $(C_FILES); do $(CLANG_FORMAT) --dry-run -Werror $$f >/dev/null 2>&1 || echo $$f; done); \
	if [ -n "$$bad" ]; then echo "clang-format would change:" $$bad >&2; exit 1; fi
	@bad=$$(gofmt -l go $$( [ -d bench ] && echo bench)); \
	if [ -n "$$bad" ]; then echo "gofmt would change:" $$bad >&2; exit 1; fi

tidy: deps
	$(CLANG_TIDY) --quiet $(LIB_SRC) -- -std=gnu11 -D_GNU_SOURCE -Ibindings -Icsrc 2>/dev/null

lint: fmt-check tidy

# ------------------------------------------------------------------ modules
# Each concern with targets of its own (fuzzing, crash tests, the server's
# load benchmark, ...) keeps them in mk/<concern>.mk; a file adds the test
# targets that `make test` must run to TEST_EXTRA.
TEST_EXTRA :=
include $(sort $(wildcard mk/*.mk))

# ------------------------------------------------------------------ all tests
test: deps lint test-c test-asan test-tsan test-valgrind test-go test-bench-go $(TEST_EXTRA)
	@echo "make test: every test passed"

# ------------------------------------------------------------------ benchmarks
$(BENCH_BIN): $(BENCH_SRC) build/libmantis.a $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -O2 -g -pthread -D_GNU_SOURCE $(WARN) -Wno-missing-prototypes \
		-Ibindings -Icsrc -Ibench/c $(BENCH_SRC) build/libmantis.a \
		-lurcu -lurcu-cds $(LIBS) -o $@

bench-c: lib
	@$(MAKE) --no-print-directory $(BENCH_BIN)
	$(BENCH_BIN) --out $(BENCH_JSON) --traces ../shared/traces $(BENCH_ARGS)

MANTISDB := build/bin/mantisdb

# The command with the peers (bench module) when it exists, else the main
# module's (our engines and sync.Map only).
$(MANTISDB): lib FORCE
	@mkdir -p $(dir $@)
	@if [ -f bench/go.mod ]; then \
		echo "cd bench && $(GO) build $(GO_TAGS_C) -o ../$@ ./cmd/mantisdb"; \
		cd bench && $(GO) build $(GO_TAGS_C) -o ../$@ ./cmd/mantisdb; \
	else \
		echo "$(GO) build $(GO_TAGS_C) -o $@ ./go/cmd/mantisdb"; \
		$(GO) build $(GO_TAGS_C) -o $@ ./go/cmd/mantisdb; \
	fi

run: lib
	@if [ -d go/cmd/mantisdb ]; then \
		$(MAKE) --no-print-directory $(MANTISDB) && \
		$(MANTISDB) --benchmark-only --benchmark-stress=light --out build/bench-results; \
	else \
		$(MAKE) --no-print-directory bench-c BENCH_ARGS=--quick; \
	fi

bench: lib
	$(MAKE) --no-print-directory $(MANTISDB)
	$(MANTISDB) --benchmark-only --benchmark-stress=medium --out build/bench-results

FORCE:

# ------------------------------------------------------------------ install
install: lib
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 build/libmantis.a $(DESTDIR)$(PREFIX)/lib/
	install -m 644 bindings/*.h $(DESTDIR)$(PREFIX)/include/
	sed -e 's|@PREFIX@|$(PREFIX)|' bindings/mantis.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/mantis.pc

clean:
	rm -rf build
