// Package e2e holds bundlex's whole-system tests: real bundlex processes, real TLS on
// loopback, and SPIRE Server v1.13.3 as a federation peer. The package has no code
// outside its tests.
//
// # Requirements
//
//   - A Go toolchain (the `go` command on PATH). The tests build SPIRE Server once
//     per test process from the separate module in e2e/spire, which pins SPIRE as a
//     Go tool so that its dependencies never enter bundlex's own module. The binary
//     lands in e2e/spire/bin. The first build downloads SPIRE's modules and compiles
//     all of SPIRE with cgo, because its SQLite datastore needs a C compiler. On a
//     2-CPU machine that took about 7 minutes. Later builds reuse the Go build
//     cache and took about 17 seconds there.
//   - Docker, for the tests that run a bundlex cluster in containers.
//
// Set BUNDLEX_SPIRE_SERVER to the path of a spire-server v1.13.3 binary to skip the
// build. A test fails, never skips, when SPIRE Server can neither be found nor built.
//
// # Running
//
//	go test ./e2e/...
//
// With an empty Go build cache, add -timeout 30m: go test stops a test binary
// after 10 minutes by default, and the first SPIRE build uses most of that on a
// small machine. Add -v to see how long the build and each SPIRE start take. When
// a test fails, it prints the log of each SPIRE Server it started.
package e2e
