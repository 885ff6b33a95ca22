package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bundlex/bundlex/internal/verify"
)

// TestRunShort runs the whole benchmark as a smoke test, against a node built
// from this module, and checks that every variant and the push latency produced
// measurements.
func TestRunShort(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The node's Unix sockets must fit in 108 bytes, which t.TempDir() paths
	// with the test name may exceed.
	r, err := run(ctx, []string{"-short", "-dir", os.TempDir()})
	require.NoError(t, err)

	require.Len(t, r.rounds, 1)
	for _, name := range variantNames {
		m, ok := r.rounds[0][name]
		require.True(t, ok, "variant %s measured", name)
		require.Positive(t, m.verifications, "verifications of %s", name)
		require.Positive(t, m.elapsed, "elapsed time of %s", name)
	}
	require.Len(t, r.push, 1)
	require.Equal(t, 1, r.push[0].watchers)
	require.Len(t, r.push[0].latencies, 5)
	for _, latency := range r.push[0].latencies {
		require.Positive(t, latency)
	}

	var out strings.Builder
	r.write(&out)
	for _, name := range variantNames {
		require.Contains(t, out.String(), "| "+name+" |")
	}
	require.Contains(t, out.String(), "| 1 | 5 |", "push latency row")
}

func TestParseSettingsRejects(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		fragment string
	}{
		{"too few distinct tokens", []string{"-distinct", "100"}, "-distinct is 100"},
		{"distinct below cache plus clients",
			[]string{"-concurrency", "64", "-distinct", "4222"}, "set at least 4223"},
		{"mix share above one", []string{"-mix-new", "1.5"}, "-mix-new is 1.5"},
		{"zero rounds", []string{"-rounds", "0"}, "-rounds is 0"},
		{"zero concurrency", []string{"-concurrency", "0"}, "-concurrency is 0"},
		{"bad watcher list", []string{"-push-watchers", "1,x"}, `"1,x"`},
		{"negative push changes", []string{"-push-changes", "-1"}, "-push-changes is -1"},
		{"positional argument", []string{"extra"}, `"extra"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseSettings(tt.args)
			require.ErrorContains(t, err, tt.fragment)
		})
	}
}

func TestParseSettingsShort(t *testing.T) {
	s, err := parseSettings([]string{"-short", "-rounds", "2"})
	require.NoError(t, err)
	require.Equal(t, 2, s.rounds, "explicit flag wins over -short")
	require.Equal(t, 300*time.Millisecond, s.duration)
	require.Equal(t, verify.DefaultResultCacheSize+2*s.concurrency-1, s.distinct)
	require.Equal(t, []int{1}, s.pushWatchers)
}

func TestProcessCPUTimeMatchesRusage(t *testing.T) {
	// Burn some CPU so that both clocks have ticked.
	deadline := time.Now().Add(50 * time.Millisecond)
	for time.Now().Before(deadline) {
	}
	fromProc, err := processCPUTime(os.Getpid())
	require.NoError(t, err)
	fromRusage, err := selfCPUTime()
	require.NoError(t, err)
	ticks, err := clockTicksPerSecond()
	require.NoError(t, err)
	tick := time.Second / time.Duration(ticks)
	require.Positive(t, fromProc)
	// /proc counts in clock ticks and was read first.
	require.LessOrEqual(t, fromProc, fromRusage+tick)
	machine, err := machineCPUTime()
	require.NoError(t, err)
	require.GreaterOrEqual(t, machine, fromRusage-tick,
		"the machine's CPU time includes this process's")
}
