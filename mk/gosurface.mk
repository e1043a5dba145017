# The Go surface: how Go builds link the C core, and the tests that prove it
# (docs/architecture/go-cengine.md, "Linking the C core").
#
# go/storage links libmantis through `#cgo pkg-config: mantis`, the
# convention of cgo wrappers of installed C libraries. `make install`
# installs mantis.pc; in-repository builds use build/pkgconfig/mantis.pc,
# written by `make lib`, which points into this checkout (bindings/ and
# build/libmantis.a): every make target exports PKG_CONFIG_PATH to it, and
# a go command run by hand needs the same:
#
#   export PKG_CONFIG_PATH=$PWD/build/pkgconfig
#   go test -tags ccore ./...

MANTIS_PC := build/pkgconfig/mantis.pc
export PKG_CONFIG_PATH := $(CURDIR)/build/pkgconfig$(if $(PKG_CONFIG_PATH),:$(PKG_CONFIG_PATH))

lib: $(MANTIS_PC)

$(MANTIS_PC): bindings/mantis.pc.in
	@mkdir -p $(dir $@)
	sed -e 's|@PREFIX@|$(CURDIR)|' -e 's|^libdir=.*|libdir=$${prefix}/build|' \
		-e 's|^includedir=.*|includedir=$${prefix}/bindings|' $< > $@

# A module outside the tree builds and runs the C engine from `make install`.
.PHONY: test-gomodule
test-gomodule: lib
	GO=$(GO) tests/gomodule/run.sh

TEST_EXTRA += test-gomodule
