# mk/core-fix.mk - the storage core's fuzzer (issue 8).
#
#   make fuzz             fuzz the public storage API for FUZZ_TIME seconds
#                         (default 60), growing build/fuzz/corpus from the
#                         seeds in tests/fuzz/corpus
#   make test-fuzz        (in make test) replay the seed corpus, then a
#                         60-second session
#
# libFuzzer comes with clang-14 (Debian: clang-14, libfuzzer-14-dev). The
# library is compiled into the fuzzer with ASan+UBSan and the C library's
# allocator, as the asan variant is, plus coverage instrumentation.

FUZZ_CC ?= clang-14
FUZZ_TIME ?= 60
FUZZ_DIR := build/fuzz
FUZZ_BIN := $(FUZZ_DIR)/fuzz_db_api
FUZZ_SEEDS := tests/fuzz/corpus
FUZZ_FLAGS := -std=gnu11 -g -O1 -pthread -D_GNU_SOURCE -fno-omit-frame-pointer \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	-DMT_LIBC_MALLOC -Wall -Wextra -Werror -Wno-unused-parameter -Ibindings -Icsrc
FUZZ_OPTS := -rss_limit_mb=4096 -timeout=30 -print_final_stats=1
FUZZ_ENV := ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

.PHONY: fuzz fuzz-bin test-fuzz

fuzz-bin: deps
	@$(MAKE) --no-print-directory $(FUZZ_BIN)

$(FUZZ_BIN): tests/fuzz/fuzz_db_api.c $(LIB_SRC) $(HDRS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) tests/fuzz/fuzz_db_api.c $(LIB_SRC) -lck -lmimalloc -lpthread -lm -o $@

fuzz: fuzz-bin
	@mkdir -p $(FUZZ_DIR)/corpus
	$(FUZZ_ENV) $(FUZZ_BIN) $(FUZZ_OPTS) -max_total_time=$(FUZZ_TIME) \
		$(FUZZ_DIR)/corpus $(FUZZ_SEEDS)

test-fuzz: fuzz-bin
	$(FUZZ_ENV) $(FUZZ_BIN) $(FUZZ_OPTS) -runs=0 $(FUZZ_SEEDS)
	@$(MAKE) --no-print-directory fuzz FUZZ_TIME=60

TEST_EXTRA += test-fuzz
