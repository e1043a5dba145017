# mk/goc-point.mk - Go builds of the C engine see every change of the C core.
#
# The go command's build cache does not hash the libraries a cgo package
# links (cmd/go: "The build cache does not detect changes to C libraries
# imported with cgo"), and pkg-config's output is not part of its cache
# key either: after a change under csrc/, `make lib` rebuilt
# build/libmantis.a but `go build -tags ccore` / `go test -tags ccore`
# reused the package compiled against the old archive, so benchmarks and
# tests silently ran the previous C core. CGO_CFLAGS is part of the key,
# so every make recipe gets the archive's checksum in it (a -D no source
# reads): a new archive is a new key. It is expanded when each recipe
# runs, after `lib` rebuilt the archive. By hand, the same:
#
#   export CGO_CFLAGS="-O2 -g -DMANTIS_LIB_ID=$(cksum < build/libmantis.a | cut -d' ' -f1)"

MANTIS_LIB_ID = $(firstword $(shell cksum < build/libmantis.a 2>/dev/null))
export CGO_CFLAGS = -O2 -g$(if $(MANTIS_LIB_ID), -DMANTIS_LIB_ID=$(MANTIS_LIB_ID))

.PHONY: print-cgo-cflags
print-cgo-cflags:
	@echo "$$CGO_CFLAGS"
