#!/usr/bin/env bash
# Proves that a Go module outside this repository can build the C engine
# from an installed libmantis, the way users get it (docs/architecture/
# go-cengine.md, "Linking the C core"):
#
#   1. make install PREFIX=<temp>/prefix
#   2. a copy of this module's sources without build/ (what the module
#      proxy would serve: tracked and untracked, not ignored, files)
#   3. a throwaway module <temp>/app that requires github.com/mantisdb/
#      mantisdb (replaced by the copy) and imports go/storage
#   4. go build -tags ccore with PKG_CONFIG_PATH=<temp>/prefix/lib/pkgconfig
#      only, then run the program (tests/gomodule/testdata/main.go)
#
# Usage: tests/gomodule/run.sh (from the repository root; make test-gomodule)
set -euo pipefail

root=$(pwd)
go=${GO:-go}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mantis-gomodule.XXXXXX")
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT

make --no-print-directory install PREFIX="$tmp/prefix" >/dev/null
test -f "$tmp/prefix/lib/pkgconfig/mantis.pc"

mkdir -p "$tmp/src"
git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$tmp/src"
test ! -e "$tmp/src/build" || { echo "gomodule: build/ was copied" >&2; exit 1; }

mkdir -p "$tmp/app"
cp tests/gomodule/testdata/main.go "$tmp/app/"
cat >"$tmp/app/go.mod" <<MOD
module example.com/app

go 1.26

require github.com/mantisdb/mantisdb v0.0.0

replace github.com/mantisdb/mantisdb => $tmp/src
MOD

cd "$tmp/app"
export PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig" GOWORK=off GOFLAGS=-mod=mod
"$go" mod tidy >/dev/null
# The storage package links through pkg-config, and finds the installed one.
pc=$("$go" list -tags ccore -f '{{join .CgoPkgConfig " "}}' github.com/mantisdb/mantisdb/go/storage)
test "$pc" = mantis || { echo "gomodule: go/storage does not link through pkg-config ($pc)" >&2; exit 1; }
test "$(pkg-config --variable=prefix mantis)" = "$tmp/prefix"
"$go" build -tags ccore -o app .
./app
echo "gomodule: a module outside the tree built the C engine from $tmp/prefix"
