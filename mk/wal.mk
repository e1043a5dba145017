# Durability (issue 9): the write-ahead log, checkpoints, recovery.
#
# The short runs (100 kill -9 cycles per engine, 25 power-loss rounds, the
# corruption and truncation sweeps) are plain Go tests of go/storage: test-go
# runs them for both engines, and under -race (with -short: 20 cycles).
#
#   make crash      the long runs: 1,000 kill -9 cycles per engine, both builds
#   make bench-wal  the durability benchmarks (sync and unsynced writers against
#                   the disk's fdatasync rate, replay MB/s, in-memory Put)

crash: lib
	MANTIS_CRASH_CYCLES=1000 $(GO) test -count=1 -timeout 90m \
		-run 'TestWALKill$$|TestWALPowerLoss|TestWALCorruption' ./go/storage/
	MANTIS_CRASH_CYCLES=1000 $(GO) test -count=1 -timeout 90m $(GO_TAGS_C) \
		-run 'TestWALKill$$|TestWALPowerLoss|TestWALCorruption' ./go/storage/

bench-wal: lib
	$(GO) test -run '^$$' -bench 'BenchmarkWAL(SyncPut|UnsyncedPut)' -benchtime 3000x $(GO_TAGS_C) ./go/storage/
	$(GO) test -run '^$$' -bench 'BenchmarkWALReplay' -benchtime 5x $(GO_TAGS_C) ./go/storage/
	$(GO) test -run '^$$' -bench 'BenchmarkWALInMemoryPut' -benchtime 2000000x $(GO_TAGS_C) ./go/storage/

.PHONY: crash bench-wal
