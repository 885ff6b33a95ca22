package main

import (
	"bufio"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSelfCommandFor(t *testing.T) {
	const cache = "/home/u/.cache/go-build"
	tests := []struct {
		name         string
		exe          string
		arg0         string
		inModuleRoot bool
		want         string
	}{
		{"go run first build", "/tmp/go-build3712/b001/exe/bundlex", "/tmp/go-build3712/" +
			"b001/exe/bundlex", true, "go run ./cmd/bundlex"},
		{"go run cached build", cache + "/c4/c479d3-d/bundlex", cache + "/c4/c479d3-d/bundlex",
			true, "go run ./cmd/bundlex"},
		{"go run outside module root", "/tmp/go-build1/b001/exe/bundlex", "bundlex", false,
			"go run github.com/bundlex/bundlex/cmd/bundlex"},
		{"installed on PATH", "/usr/local/bin/bundlex", "bundlex", true, "bundlex"},
		{"built in working directory", "/home/u/src/bundlex/bundlex", "./bundlex", true,
			"./bundlex"},
		{"other program in build dir", "/tmp/go-build1/b001/bundlex.test", "/tmp/go-build1/" +
			"b001/bundlex.test", true, "/tmp/go-build1/b001/bundlex.test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, selfCommandFor(tt.exe, tt.arg0, cache, tt.inModuleRoot))
		})
	}
}

// demoTryLines starts `demo --keep` with cmd, returns its "Try:" lines and stops
// it with SIGINT to its process group, as Ctrl-C in a terminal does. The go
// command exits with status 1 after a SIGINT even when the program exits 0, so
// the exit status is checked only when exitZero is set.
func demoTryLines(t *testing.T, cmd *exec.Cmd, exitZero bool) []string {
	t.Helper()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	stopped := false
	defer func() {
		if !stopped {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			_ = cmd.Wait()
		}
	}()

	var tryLines []string
	scanner := bufio.NewScanner(stdout)
	inTry := false
	for scanner.Scan() {
		line := scanner.Text()
		if line == "Try:" {
			inTry = true
			continue
		}
		if inTry && strings.HasPrefix(line, "(curl") {
			break
		}
		if inTry {
			tryLines = append(tryLines, line)
		}
	}
	require.NotEmpty(t, tryLines, "no Try: lines")
	require.NoError(t, syscall.Kill(-cmd.Process.Pid, syscall.SIGINT))
	// Read to the end, which comes when the demo exits, before Wait closes the pipe.
	for scanner.Scan() {
	}
	err = cmd.Wait()
	stopped = true
	if exitZero {
		require.NoError(t, err)
	}
	return tryLines
}

// TestDemoTryLinesRunAsTyped runs the demo as a built binary and through go
// run, and checks that each "Try:" line starts with a command that works.
func TestDemoTryLinesRunAsTyped(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs bundlex twice")
	}
	goTool, err := exec.LookPath("go")
	require.NoError(t, err, "the go command runs the demo with go run")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	workDir := t.TempDir()
	build := exec.CommandContext(ctx, goTool, "build", "-o", filepath.Join(workDir, "bundlex"),
		".")
	out, err := build.CombinedOutput()
	require.NoError(t, err, string(out))

	built := exec.CommandContext(ctx, "./bundlex", "demo", "--keep")
	built.Dir = workDir
	lines := demoTryLines(t, built, true)
	require.True(t, strings.HasPrefix(lines[0], "  ./bundlex --socket "), lines[0])
	require.Contains(t, lines[1], "TOKEN=$(./bundlex --socket ")

	moduleRoot, err := filepath.Abs(filepath.Join("..", ".."))
	require.NoError(t, err)
	goRun := exec.CommandContext(ctx, goTool, "run", "./cmd/bundlex", "demo", "--keep")
	goRun.Dir = moduleRoot
	lines = demoTryLines(t, goRun, false)
	require.True(t, strings.HasPrefix(lines[0], "  go run ./cmd/bundlex --socket "), lines[0])
	require.Contains(t, lines[1], "TOKEN=$(go run ./cmd/bundlex --socket ")
}
