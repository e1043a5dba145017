module github.com/mantisdb/mantisdb/bench

go 1.26

require (
	github.com/dgraph-io/ristretto/v2 v2.4.2
	github.com/mantisdb/mantisdb v0.0.0
	github.com/maypok86/otter/v2 v2.4.0
	github.com/puzpuzpuz/xsync/v4 v4.5.0
	github.com/tidwall/btree v1.8.2
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/dustin/go-humanize v1.0.1 // indirect
	golang.org/x/sys v0.36.0 // indirect
)

replace github.com/mantisdb/mantisdb => ../
