package storage

// testEngine is one engine under test. Every engine-agnostic test (the
// conformance suite, the fuzz test, the benchmarks) loops over testEngines
// with t.Run(name). Builds with more engines append to testEngines from an
// init function in a file of their own (the C engine: a file with
// //go:build ccore && cgo).
type testEngine struct {
	name string
	// new returns a fresh, not yet initialised engine.
	new func(cfg StorageConfig) Engine
}

var testEngines = []testEngine{
	{"purego", func(c StorageConfig) Engine { return NewPureGoStorageEngine(c) }},
}
