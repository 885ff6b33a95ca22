package telemetry

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestNewLoggerLevelsAndFormats(t *testing.T) {
	tests := []struct {
		level      string
		wantLevels []string
	}{
		{"debug", []string{"DEBUG", "INFO", "WARN", "ERROR"}},
		{"info", []string{"INFO", "WARN", "ERROR"}},
		{"warn", []string{"WARN", "ERROR"}},
		{"error", []string{"ERROR"}},
	}
	for _, tt := range tests {
		t.Run("json at "+tt.level, func(t *testing.T) {
			var buf bytes.Buffer
			logger, err := NewLogger(tt.level, "json", &buf)
			require.NoError(t, err)
			logger.Debug("d")
			logger.Info("i")
			logger.Warn("w")
			logger.Error("e", "trust_domain", "org-b.test")

			var got []string
			for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
				record := map[string]any{}
				require.NoError(t, json.Unmarshal([]byte(line), &record))
				got = append(got, record["level"].(string))
			}
			require.Equal(t, tt.wantLevels, got)
		})
	}
}

func TestNewLoggerTextFormat(t *testing.T) {
	var buf bytes.Buffer
	logger, err := NewLogger("info", "text", &buf)
	require.NoError(t, err)
	logger.Info("bundle stored", "trust_domain", "org-b.test", "sequence", 7)
	require.Contains(t, buf.String(), `level=INFO msg="bundle stored" `+
		"trust_domain=org-b.test sequence=7")
}

func TestNewLoggerRejectsBadInput(t *testing.T) {
	_, err := NewLogger("verbose", "json", &bytes.Buffer{})
	require.EqualError(t, err,
		`telemetry: invalid log level "verbose": use debug, info, warn or error`)
	_, err = NewLogger("info", "xml", &bytes.Buffer{})
	require.EqualError(t, err, `telemetry: invalid log format "xml": use text or json`)
}
