package telemetry

import (
	"fmt"
	"io"
	"log/slog"
)

// LevelTrace is the slog level of hclog's Trace, 4 below Debug as slog spaces
// its levels. No handler built by NewLogger enables it, so trace output from
// hashicorp libraries is dropped unless the caller builds its own handler.
const LevelTrace = slog.LevelDebug - 4

// LoggerNameKey is the attribute that carries the name of an hclog or standard
// logger routed into slog, such as "raft" or "raft.net".
const LoggerNameKey = "logger"

// NewLogger returns a logger that writes to w. The level is debug, info, warn
// or error, and the format is text or json.
func NewLogger(level, format string, w io.Writer) (*slog.Logger, error) {
	var slogLevel slog.Level
	switch level {
	case "debug":
		slogLevel = slog.LevelDebug
	case "info":
		slogLevel = slog.LevelInfo
	case "warn":
		slogLevel = slog.LevelWarn
	case "error":
		slogLevel = slog.LevelError
	default:
		return nil, fmt.Errorf("telemetry: invalid log level %q: use debug, info, warn or error",
			level)
	}
	opts := &slog.HandlerOptions{Level: slogLevel}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("telemetry: invalid log format %q: use text or json", format)
	}
}
