# The mantisdb server (go/server, go/cli; docs/server.md).
#
#   make bench-http    the server under wrk against the HTTP floor (bench/http/run.sh;
#                      DURATION, ROUNDS, CONNS, THREADS, MIX_KEYS override its defaults)
#   make fuzz-server   fuzz the server's routes for FUZZTIME (default 60s) per target
#
# make test runs the server's unit, fuzz-seed and process tests through test-go
# (go test ./...), and test-server-fuzz: a short fuzzing run of each target.

HTTP_FLOOR := build/bin/httpfloor
FUZZTIME ?= 60s

.PHONY: bench-http fuzz-server test-server-fuzz

bench-http: lib
	@$(MAKE) --no-print-directory build/bin/mantisdb
	cd bench && $(GO) build -o ../$(HTTP_FLOOR) ./http/floor
	bench/http/run.sh build/bin/mantisdb $(HTTP_FLOOR)

fuzz-server:
	$(GO) test -run '^$$' -fuzz '^FuzzAPI$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./go/server
	$(GO) test -run '^$$' -fuzz '^FuzzRequest$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./go/server
	$(GO) test -run '^$$' -fuzz '^FuzzPutBody$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./go/server

test-server-fuzz: deps
	@$(MAKE) --no-print-directory fuzz-server FUZZTIME=10s

TEST_EXTRA += test-server-fuzz
