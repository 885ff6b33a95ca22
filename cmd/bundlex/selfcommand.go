package main

import (
	"os"
	"path/filepath"
	"strings"
)

// Commands that run bundlex from its source after `go run`.
const (
	goRunFromModuleRoot = "go run ./cmd/bundlex"
	goRunFromAnywhere   = "go run github.com/bundlex/bundlex/cmd/bundlex"
)

// selfCommand returns the command that runs this program again from the
// current directory, for the "Try:" lines of `server --dev` and `demo --keep`.
func selfCommand() string {
	exe, err := os.Executable()
	if err != nil {
		exe = ""
	}
	_, statErr := os.Stat(filepath.Join("cmd", "bundlex"))
	return selfCommandFor(exe, os.Args[0], goBuildCache(), statErr == nil)
}

// selfCommandFor returns the go run command when exe is a build of `go run`,
// because that build is temporary and no bundlex is on the PATH then.
// Otherwise it returns arg0, the program as the user typed it, such as bundlex
// or ./bundlex. inModuleRoot reports whether ./cmd/bundlex exists, so that the
// short go run form works.
func selfCommandFor(exe, arg0, cache string, inModuleRoot bool) string {
	if !isGoRunBuild(exe, cache) {
		if arg0 == "" {
			return "bundlex"
		}
		return arg0
	}
	if inModuleRoot {
		return goRunFromModuleRoot
	}
	return goRunFromAnywhere
}

// isGoRunBuild reports whether exe is a bundlex binary that `go run` built. Go
// 1.26 runs it from a temporary go-build directory, <tmp>/go-build*/b001/exe/,
// or from the build cache.
func isGoRunBuild(exe, cache string) bool {
	if filepath.Base(exe) != "bundlex" {
		return false
	}
	if cache != "" && strings.HasPrefix(exe, cache+string(filepath.Separator)) {
		return true
	}
	for dir := filepath.Dir(exe); dir != filepath.Dir(dir); dir = filepath.Dir(dir) {
		if strings.HasPrefix(filepath.Base(dir), "go-build") {
			return true
		}
	}
	return false
}

// goBuildCache returns the Go build cache directory: $GOCACHE, or go-build in
// the user cache directory, as the go command chooses it. Empty when unknown.
func goBuildCache() string {
	if dir := os.Getenv("GOCACHE"); dir != "" {
		return filepath.Clean(dir)
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "go-build")
}
