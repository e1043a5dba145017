//go:build ccore && cgo

package storage

// How the C engine links the C core: through pkg-config, like cgo wrappers
// of other installed C libraries. The flags (the include directory of
// mantis.h, libmantis and its dependencies) come from mantis.pc:
//
//   - a program in any module: `make install PREFIX=...` installs
//     $PREFIX/lib/pkgconfig/mantis.pc; `go build -tags ccore` finds it on
//     pkg-config's default path, or with PKG_CONFIG_PATH set to that
//     directory;
//   - builds inside this repository: `make lib` writes
//     build/pkgconfig/mantis.pc, pointing into the checkout (bindings/ and
//     build/libmantis.a), and the Makefile exports PKG_CONFIG_PATH to it;
//     run by hand, export PKG_CONFIG_PATH=$PWD/build/pkgconfig.
//
// One mechanism for both, so that the in-repository build always exercises
// what users get (docs/architecture/go-cengine.md, "Linking the C core",
// argues the choice; tests/gomodule/run.sh proves the installed case).

/*
#cgo pkg-config: mantis
*/
import "C"
