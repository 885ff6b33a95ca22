package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// lockedBuffer is a bytes.Buffer that the demo writes to while the test reads.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestDemoRunsEveryStep(t *testing.T) {
	var stdout, stderr bytes.Buffer
	started := time.Now()
	code := run(context.Background(), []string{"demo"}, strings.NewReader(""), &stdout, &stderr)
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	t.Logf("demo finished in %s", time.Since(started).Round(time.Millisecond))

	lines := strings.Split(stdout.String(), "\n")
	var steps []string
	for _, line := range lines {
		if len(line) > 2 && line[0] >= '1' && line[0] <= '9' && line[1] == '.' {
			steps = append(steps, line[:2])
		}
	}
	require.Equal(t, []string{"1.", "2.", "3.", "4.", "5.", "6."}, steps)
	out := stdout.String()
	require.Contains(t, out, "org B holds org-a.test\n   sequence 1, org A holds org-b.test "+
		"sequence 1.")
	require.Contains(t, out,
		"accepted it: HTTP 200, spiffe_id spiffe://org-a.test/agents/planner.")
	require.Contains(t, out, "org B rejected it: HTTP 401 unknown_trust_domain:\n"+
		`   trust domain "org-x.test" of spiffe://org-x.test/agents/planner is neither`)
	require.NotContains(t, out, "Ctrl-C", "without --keep the demo exits")
	require.Empty(t, stderr.String())
}

// demoSocketPattern matches the admin socket lines that `demo --keep` prints.
var demoSocketPattern = regexp.MustCompile(`(?m)^  (org [ABX]) --socket (\S+) `)

func TestDemoKeepRunsUntilCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr lockedBuffer
	exit := make(chan int, 1)
	go func() {
		exit <- run(ctx, []string{"demo", "--keep"}, strings.NewReader(""), &stdout, &stderr)
	}()
	// The demo prints its Try: lines once every step passed. Each of its waits is
	// bounded by demoWaitTimeout, so a demo that fails exits well before this
	// deadline, and the test then reports its output.
	reached := time.NewTimer(4 * demoWaitTimeout)
	defer reached.Stop()
	ticker := time.NewTicker(50 * time.Millisecond)
	defer ticker.Stop()
	for !strings.Contains(stdout.String(), "\nTry:\n") {
		select {
		case code := <-exit:
			t.Fatalf("demo exited with code %d before --keep; stdout:\n%s\nstderr:\n%s",
				code, stdout.String(), stderr.String())
		case <-reached.C:
			t.Fatalf("demo did not reach --keep; stdout:\n%s\nstderr:\n%s",
				stdout.String(), stderr.String())
		case <-ticker.C:
		}
	}

	matches := demoSocketPattern.FindAllStringSubmatch(stdout.String(), -1)
	require.Len(t, matches, 3)
	sockets := map[string]string{}
	for _, m := range matches {
		sockets[m[1]] = m[2]
	}
	listed, errOut, code := runCLI(t, sockets["org B"], "", "federation", "list")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, listed, "org-a.test")
	listed, errOut, code = runCLI(t, sockets["org X"], "", "federation", "list")
	require.Equal(t, 0, code, errOut)
	require.NotContains(t, listed, "org-a.test", "nobody federates with org X")

	cancel()
	select {
	case code := <-exit:
		require.Equal(t, 0, code, "stderr:\n%s", stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatal("demo still running 30s after its context ended")
	}
	require.True(t, strings.HasSuffix(stdout.String(),
		"Stopping the nodes and removing their data.\n"))
	for label, socket := range sockets {
		_, err := os.Stat(filepath.Dir(socket))
		require.True(t, os.IsNotExist(err), "data directory of %s still exists: %v", label, err)
	}
}

func TestDemoCanceledFailsClearly(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, []string{"demo"}, strings.NewReader(""), &stdout, &stderr)
	require.Equal(t, 1, code)
	require.True(t, strings.HasSuffix(stderr.String(),
		"Error: demo: interrupted: context canceled\n"), stderr.String())
}

func TestDemoRejectsLogLevel(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"demo", "--log-level", "loud"},
		strings.NewReader(""), &stdout, &stderr)
	require.Equal(t, 1, code)
	require.Empty(t, stdout.String())
	require.True(t, strings.HasPrefix(stderr.String(), "Error: invalid --log-level \"loud\": "+
		"use debug, info, warn or error\n"), stderr.String())
	require.NotContains(t, stderr.String(), "Usage:")
	require.True(t, strings.HasSuffix(stderr.String(), "\nRun 'bundlex demo --help' for "+
		"the flags of this command.\n"), stderr.String())
}

func TestDemoAddressInUse(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer taken.Close()
	_, bindErr := net.Listen("tcp", taken.Addr().String())
	require.Error(t, bindErr)

	tests := []struct {
		name string
		err  error
		want bool
	}{
		{name: "wrapped bind error", err: fmt.Errorf("start: %w", bindErr), want: true},
		{name: "bind error as text",
			err: fmt.Errorf("gossip: Failed to start TCP listener: %v", bindErr), want: true},
		{name: "other error", err: errors.New("waiting for org-a.test ready"), want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, addressInUse(tt.err))
		})
	}
}
