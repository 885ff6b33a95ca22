package telemetry

import (
	"bytes"
	"log"
	"log/slog"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// StdLogger returns a standard library logger, for memberlist's Logger field,
// whose lines reach logger's handler under the given name with the level taken
// from their "[LEVEL]" tag.
func StdLogger(logger *slog.Logger, name string) *log.Logger {
	return HCLogger(logger, name).StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true})
}

// levelTags are the level tags hashicorp libraries put in front of messages
// written to a standard logger.
var levelTags = []struct {
	tag   string
	level hclog.Level
}{
	{"[TRACE]", hclog.Trace},
	{"[DEBUG]", hclog.Debug},
	{"[INFO]", hclog.Info},
	{"[WARN]", hclog.Warn},
	{"[WARNING]", hclog.Warn},
	{"[ERR]", hclog.Error},
	{"[ERROR]", hclog.Error},
}

// levelWriter logs each line written to it through an hclog adapter.
type levelWriter struct {
	logger     *hclogAdapter
	forceLevel hclog.Level
}

// Write logs every non-empty line of p. It always reports len(p) written,
// because a logger has no way to act on a short write.
func (w *levelWriter) Write(p []byte) (int, error) {
	for _, line := range bytes.Split(p, []byte{'\n'}) {
		text := strings.TrimRight(string(line), "\r ")
		if text == "" {
			continue
		}
		level, msg := parseLevelTag(text)
		if w.forceLevel != hclog.NoLevel {
			level = w.forceLevel
		}
		w.logger.logLine(level, msg)
	}
	return len(p), nil
}

// parseLevelTag splits "[LEVEL] message" into level and message. Text before
// the tag is dropped when it looks like a timestamp from the log package's
// flags, such as "2024/05/01 10:00:00.000000". A line without a known tag is
// Info and kept whole.
func parseLevelTag(line string) (hclog.Level, string) {
	open := strings.IndexByte(line, '[')
	if open < 0 || !isTimestamp(line[:open]) {
		return hclog.Info, line
	}
	rest := line[open:]
	for _, t := range levelTags {
		if strings.HasPrefix(rest, t.tag) {
			return t.level, strings.TrimSpace(rest[len(t.tag):])
		}
	}
	return hclog.Info, line
}

// isTimestamp reports whether s contains only characters of a date and time.
// NOTE: like go-hclog's InferLevelsWithTimestamp this is a guess, so a message
// such as "10 [ERROR] x" that has digits before the tag loses them.
func isTimestamp(s string) bool {
	for _, c := range s {
		if !strings.ContainsRune("0123456789/:.-+TZ ", c) {
			return false
		}
	}
	return true
}
