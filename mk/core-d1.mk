# The storage suite at 10M keys (bench/c/bench_storage.c, --big): engine
# gets through mantis_db_get against one dependent load over the loaded
# engine's resident growth, same page size, same run (about two minutes,
# 3-4 GiB). MIMALLOC_LARGE_OS_PAGES=1 in the environment measures it on
# huge pages. BENCH_BIG_ARGS=--quick for shorter get runs.
.PHONY: bench-storage-big
bench-storage-big: lib
	@$(MAKE) --no-print-directory $(BENCH_BIN)
	$(BENCH_BIN) --only storage --big --out build/bench/bench-storage-big.json $(BENCH_BIG_ARGS)
