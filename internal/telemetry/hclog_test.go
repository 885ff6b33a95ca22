package telemetry

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"
)

func TestHCLoggerLevelMapping(t *testing.T) {
	tests := []struct {
		name      string
		log       func(l hclog.Logger)
		wantLevel string
	}{
		{"trace below debug", func(l hclog.Logger) { l.Trace("m") }, "DEBUG-4"},
		{"debug stays debug", func(l hclog.Logger) { l.Debug("m") }, "DEBUG"},
		{"info stays info", func(l hclog.Logger) { l.Info("m") }, "INFO"},
		{"warn stays warn", func(l hclog.Logger) { l.Warn("m") }, "WARN"},
		{"error stays error", func(l hclog.Logger) { l.Error("m") }, "ERROR"},
		{"log with level", func(l hclog.Logger) { l.Log(hclog.Warn, "m") }, "WARN"},
		{"no level as info", func(l hclog.Logger) { l.Log(hclog.NoLevel, "m") }, "INFO"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logger, buf := newJSONLogger(LevelTrace)
			tt.log(HCLogger(logger, "raft"))
			record := onlyRecord(t, buf)
			require.Equal(t, tt.wantLevel, record["level"])
			require.Equal(t, "m", record["msg"])
			require.Equal(t, "raft", record[LoggerNameKey])
		})
	}
}

func TestHCLoggerKeepsFields(t *testing.T) {
	logger, buf := newJSONLogger(slog.LevelDebug)
	HCLogger(logger, "raft").Info("failed to contact", "server-id", "node-2",
		"attempts", 3, "error", errors.New("connection refused"),
		"took", 1500*time.Millisecond, "mask", hclog.Hex(255),
		"detail", hclog.Fmt("%d of %d", 1, 2), "quoted", hclog.Quote("a b"))
	record := onlyRecord(t, buf)

	require.Equal(t, "failed to contact", record["msg"])
	require.Equal(t, "node-2", record["server-id"])
	require.Equal(t, float64(3), record["attempts"])
	require.Equal(t, "connection refused", record["error"])
	require.Equal(t, "1.5s", record["took"])
	require.Equal(t, "0xff", record["mask"])
	require.Equal(t, "1 of 2", record["detail"])
	require.Equal(t, `"a b"`, record["quoted"])
	source := record["source"].(map[string]any)
	require.True(t, strings.HasSuffix(source["file"].(string), "hclog_test.go"),
		"source points at %v, not the caller", source["file"])
}

func TestHCLoggerOddArguments(t *testing.T) {
	logger, buf := newJSONLogger(slog.LevelDebug)
	HCLogger(logger, "raft").Warn("odd", "key", "value", "dangling")
	record := onlyRecord(t, buf)
	require.Equal(t, "value", record["key"])
	require.Equal(t, "dangling", record["EXTRA_VALUE_AT_END"])
}

type panickingStringer struct{ name *string }

func (p panickingStringer) String() string { return *p.name }

func TestHCLoggerSurvivesStringPanic(t *testing.T) {
	logger, buf := newJSONLogger(slog.LevelDebug)
	HCLogger(logger, "raft").Info("value", "bad", panickingStringer{})
	record := onlyRecord(t, buf)
	require.Contains(t, record["bad"], "!PANIC in String")
}

func TestHCLoggerNamesAndImpliedArgs(t *testing.T) {
	logger, buf := newJSONLogger(slog.LevelDebug)
	root := HCLogger(logger, "raft")
	withNode := root.With("node", "node-1", "term", 1)
	named := withNode.Named("net")
	reset := named.ResetNamed("memberlist")
	replaced := withNode.With("term", 2, "peer", "node-2")

	require.Equal(t, "raft", root.Name())
	require.Equal(t, "raft.net", named.Name())
	require.Equal(t, "memberlist", reset.Name())
	require.Equal(t, "net", HCLogger(logger, "").Named("net").Name())
	require.Equal(t, []any{"node", "node-1", "term", 1}, named.ImpliedArgs())
	require.Equal(t, []any{"node", "node-1", "term", 2, "peer", "node-2"},
		replaced.ImpliedArgs())
	require.Empty(t, root.ImpliedArgs())

	named.Info("from named", "extra", true)
	reset.Info("from reset")
	replaced.Info("from replaced")
	all := records(t, buf)
	require.Len(t, all, 3)

	require.Equal(t, "raft.net", all[0][LoggerNameKey])
	require.Equal(t, "node-1", all[0]["node"])
	require.Equal(t, float64(1), all[0]["term"])
	require.Equal(t, true, all[0]["extra"])

	require.Equal(t, "memberlist", all[1][LoggerNameKey])
	require.Equal(t, "node-1", all[1]["node"])

	require.Equal(t, "raft", all[2][LoggerNameKey])
	require.Equal(t, float64(2), all[2]["term"])
	require.Equal(t, "node-2", all[2]["peer"])
}

func TestHCLoggerLevelFilter(t *testing.T) {
	logger, buf := newJSONLogger(slog.LevelDebug)
	root := HCLogger(logger, "raft")
	child := root.Named("snapshot")

	require.Equal(t, hclog.Debug, root.GetLevel())
	require.False(t, root.IsTrace())
	require.True(t, root.IsDebug())
	require.True(t, root.IsError())
	root.Trace("dropped by the handler")
	require.Empty(t, buf.String())

	// The level is shared with loggers derived before and after SetLevel.
	root.SetLevel(hclog.Warn)
	require.Equal(t, hclog.Warn, child.GetLevel())
	require.False(t, child.IsInfo())
	require.True(t, child.IsWarn())
	child.Info("dropped by the filter")
	root.With("k", "v").Debug("dropped too")
	child.Warn("kept")
	require.Equal(t, "kept", onlyRecord(t, buf)["msg"])

	root.SetLevel(hclog.Off)
	require.False(t, root.IsError())
	root.Error("dropped when off")
	require.Len(t, records(t, buf), 1)

	quiet, _ := newJSONLogger(slog.LevelError + 4)
	require.Equal(t, hclog.Off, HCLogger(quiet, "raft").GetLevel())
}

func TestStandardWriterLevelTags(t *testing.T) {
	tests := []struct {
		name      string
		line      string
		wantLevel string
		wantMsg   string
	}{
		{"debug tag", "[DEBUG] memberlist: Stream connection from=127.0.0.1:1",
			"DEBUG", "memberlist: Stream connection from=127.0.0.1:1"},
		{"short error tag", "[ERR] memberlist: Failed to send", "ERROR",
			"memberlist: Failed to send"},
		{"long error tag", "[ERROR] raft: failed", "ERROR", "raft: failed"},
		{"warn tag", "[WARN] memberlist: Was able to connect", "WARN",
			"memberlist: Was able to connect"},
		{"warning tag", "[WARNING] old style", "WARN", "old style"},
		{"info tag", "[INFO] joined", "INFO", "joined"},
		{"trace tag", "[TRACE] tick", "DEBUG-4", "tick"},
		{"timestamp before tag", "2024/05/01 10:00:00.123456 [WARN] late", "WARN", "late"},
		{"no tag", "plain message", "INFO", "plain message"},
		{"unknown tag", "[NOTICE] kept whole", "INFO", "[NOTICE] kept whole"},
		{"tag after words", "peer [ERROR] kept whole", "INFO", "peer [ERROR] kept whole"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logger, buf := newJSONLogger(LevelTrace)
			std := HCLogger(logger, "memberlist").StandardLogger(nil)
			std.Println(tt.line)
			record := onlyRecord(t, buf)
			require.Equal(t, tt.wantLevel, record["level"])
			require.Equal(t, tt.wantMsg, record["msg"])
			require.Equal(t, "memberlist", record[LoggerNameKey])
		})
	}
}

func TestStandardWriterForceLevel(t *testing.T) {
	logger, buf := newJSONLogger(slog.LevelDebug)
	writer := HCLogger(logger, "http").StandardWriter(
		&hclog.StandardLoggerOptions{ForceLevel: hclog.Error})
	n, err := writer.Write([]byte("[DEBUG] first\n\nsecond\n"))
	require.NoError(t, err)
	require.Equal(t, 22, n)
	all := records(t, buf)
	require.Len(t, all, 2)
	require.Equal(t, "ERROR", all[0]["level"])
	require.Equal(t, "first", all[0]["msg"])
	require.Equal(t, "ERROR", all[1]["level"])
	require.Equal(t, "second", all[1]["msg"])
}

func TestStdLoggerRespectsHandlerLevel(t *testing.T) {
	logger, buf := newJSONLogger(slog.LevelInfo)
	std := StdLogger(logger, "memberlist")
	std.Printf("[DEBUG] memberlist: dropped")
	std.Printf("[ERR] memberlist: kept %d", 1)
	record := onlyRecord(t, buf)
	require.Equal(t, "ERROR", record["level"])
	require.Equal(t, "memberlist: kept 1", record["msg"])
}
