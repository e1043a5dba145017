# The ordered index (csrc/mt_bptree.*): its tests are part of every tests/c
# binary (make test-c, test-asan, test-tsan, test-valgrind); this runs its
# benchmark suite alone. BENCH_INDEX_ARGS=--quick for a short run;
# MIMALLOC_LARGE_OS_PAGES=1 in the environment measures it on huge pages.
.PHONY: bench-index
bench-index: lib
	@$(MAKE) --no-print-directory $(BENCH_BIN)
	$(BENCH_BIN) --only index --out build/bench/bench-index.json $(BENCH_INDEX_ARGS)
