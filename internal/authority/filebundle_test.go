package authority

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const bundleA = `{"keys":[],"spiffe_sequence":1}`
const bundleB = `{"keys":[],"spiffe_sequence":2}`

func TestFileBundleRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bundle.json")
	f, err := NewFileBundle(path, 0, nil)
	require.NoError(t, err)
	require.Equal(t, DefaultFilePollInterval, f.interval)

	_, err = f.Read()
	require.ErrorContains(t, err, path, "missing file")

	writeTestFile(t, path, bundleA)
	data, err := f.Read()
	require.NoError(t, err)
	require.Equal(t, bundleA, string(data))

	writeTestFile(t, path, strings.Repeat(" ", MaxBundleFileSize+1))
	_, err = f.Read()
	require.ErrorContains(t, err, "is larger than 4194304 bytes")
}

func TestNewFileBundleRejectsBadInput(t *testing.T) {
	_, err := NewFileBundle("", time.Second, nil)
	require.ErrorContains(t, err, "bundle file path is missing")
	_, err = NewFileBundle("x", -time.Second, nil)
	require.ErrorContains(t, err, "poll interval -1s is negative")
}

func TestFileBundlePollDetectsChanges(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bundle.json")
	logs := &logBuffer{}
	f, err := NewFileBundle(path, time.Second, logs.logger())
	require.NoError(t, err)
	st := &pollState{}

	steps := []struct {
		name    string
		content *string // nil removes the file
		changed bool
	}{
		{"missing file", nil, false},
		{"file appears", ptr(bundleA), true},
		{"same content rewritten", ptr(bundleA), false},
		{"empty file skipped", ptr(""), false},
		{"new content", ptr(bundleB), true},
		{"old content again", ptr(bundleA), true},
	}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			if step.content == nil {
				require.NoError(t, removeFile(path))
			} else {
				writeTestFile(t, path, *step.content)
			}
			data, changed := f.poll(st)
			require.Equal(t, step.changed, changed)
			if changed {
				require.Equal(t, *step.content, string(data))
				st.last = data
			}
		})
	}

	t.Run("failures logged sparsely", func(t *testing.T) {
		require.NoError(t, removeFile(path))
		for range 250 {
			_, changed := f.poll(st)
			require.False(t, changed)
		}
		writeTestFile(t, path, bundleA)
		_, changed := f.poll(st)
		require.False(t, changed, "content equals the last sent one")
		out := logs.String()
		// One failure of the first step, then polls 1, 100 and 200 of this one.
		require.Equal(t, 4, strings.Count(out, "failed to read bundle file"))
		require.Contains(t, out, `"failed_polls":250`)
	})
}

func TestFileBundleChangedDelivers(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bundle.json")
	writeTestFile(t, path, bundleA)
	f, err := NewFileBundle(path, 10*time.Millisecond, nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	changes := f.Changed(ctx)

	// A writer that replaces the file by rename, as the NOTE on FileBundle advises.
	tmp := filepath.Join(dir, "bundle.json.tmp")
	writeTestFile(t, tmp, bundleB)
	require.NoError(t, os.Rename(tmp, path))
	require.Equal(t, bundleB, receive(t, changes))

	// A writer that rewrites in place.
	writeTestFile(t, path, bundleA)
	require.Equal(t, bundleA, receive(t, changes))

	cancel()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-changes:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("channel still open 10s after the context was canceled")
		}
	}
}

func receive(t *testing.T, changes <-chan []byte) string {
	t.Helper()
	select {
	case data, ok := <-changes:
		require.True(t, ok, "channel closed")
		return string(data)
	case <-time.After(10 * time.Second):
		t.Fatal("no change delivered within 10s")
		return ""
	}
}

func ptr(s string) *string { return &s }
