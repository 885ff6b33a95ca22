package telemetry

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bundlex/bundlex/internal/testutil"
)

// syncBuffer is a bytes.Buffer safe for the concurrent writes of raft's and
// memberlist's goroutines and the test's reads.
type syncBuffer = testutil.SyncBuffer

// newJSONLogger returns a logger at the given level writing JSON to a buffer.
func newJSONLogger(level slog.Level) (*slog.Logger, *syncBuffer) {
	buf := &syncBuffer{}
	handler := slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: level, AddSource: true})
	return slog.New(handler), buf
}

// records decodes every JSON line written to buf.
func records(t *testing.T, buf *syncBuffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if line == "" {
			continue
		}
		record := map[string]any{}
		require.NoError(t, json.Unmarshal([]byte(line), &record), line)
		out = append(out, record)
	}
	return out
}

// onlyRecord decodes buf and requires exactly one record in it.
func onlyRecord(t *testing.T, buf *syncBuffer) map[string]any {
	t.Helper()
	all := records(t, buf)
	require.Len(t, all, 1, buf.String())
	return all[0]
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
