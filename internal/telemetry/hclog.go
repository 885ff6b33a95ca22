package telemetry

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
)

// extraValueKey holds the last argument of an odd-length key/value list, the
// key go-hclog itself uses for that case.
const extraValueKey = "EXTRA_VALUE_AT_END"

// HCLogger returns a go-hclog Logger that writes through logger's handler.
// The name goes into the LoggerNameKey attribute. Levels map to slog's, with
// Trace as LevelTrace. SetLevel adds a filter, shared with every logger
// derived through With and Named, on top of the handler's own level.
func HCLogger(logger *slog.Logger, name string) hclog.Logger {
	a := &hclogAdapter{root: logger.Handler(), name: name, level: new(atomic.Int32)}
	a.handler = a.buildHandler()
	return a
}

// hclogAdapter implements hclog.Logger on a slog.Handler.
type hclogAdapter struct {
	root    slog.Handler
	name    string
	implied []any
	// handler is root with the name and implied arguments attached.
	handler slog.Handler
	// level is the hclog.Level set with SetLevel. hclog.NoLevel leaves the
	// decision to the handler.
	level *atomic.Int32
}

var _ hclog.Logger = (*hclogAdapter)(nil)

func (a *hclogAdapter) buildHandler() slog.Handler {
	attrs := make([]slog.Attr, 0, 1+len(a.implied)/2)
	if a.name != "" {
		attrs = append(attrs, slog.String(LoggerNameKey, a.name))
	}
	attrs = append(attrs, argsToAttrs(a.implied)...)
	if len(attrs) == 0 {
		return a.root
	}
	return a.root.WithAttrs(attrs)
}

// derive copies a with another name and implied arguments.
func (a *hclogAdapter) derive(name string, implied []any) *hclogAdapter {
	child := &hclogAdapter{root: a.root, name: name, implied: implied, level: a.level}
	child.handler = child.buildHandler()
	return child
}

// log must be called directly by each exported logging method. Three frames up
// is then always the caller's code, so slog's AddSource names the right line.
func (a *hclogAdapter) log(level hclog.Level, msg string, args []any) {
	if !a.enabled(level) {
		return
	}
	var pcs [1]uintptr
	runtime.Callers(3, pcs[:])
	record := slog.NewRecord(time.Now(), slogLevel(level), msg, pcs[0])
	record.AddAttrs(argsToAttrs(args)...)
	// A handler error has nowhere better to go than the handler itself.
	_ = a.handler.Handle(context.Background(), record)
}

// logLine logs one line from a standard logger. Its source location would be
// inside the log package, so the record carries none.
func (a *hclogAdapter) logLine(level hclog.Level, msg string) {
	if !a.enabled(level) {
		return
	}
	record := slog.NewRecord(time.Now(), slogLevel(level), msg, 0)
	_ = a.handler.Handle(context.Background(), record)
}

func (a *hclogAdapter) enabled(level hclog.Level) bool {
	if level == hclog.Off {
		return false
	}
	filter := hclog.Level(a.level.Load())
	if filter == hclog.Off || (filter != hclog.NoLevel && level < filter) {
		return false
	}
	return a.handler.Enabled(context.Background(), slogLevel(level))
}

// slogLevel maps an hclog level. NoLevel, which hclog prints without a level,
// becomes Info.
func slogLevel(level hclog.Level) slog.Level {
	switch level {
	case hclog.Trace:
		return LevelTrace
	case hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

func (a *hclogAdapter) Log(level hclog.Level, msg string, args ...any) {
	a.log(level, msg, args)
}
func (a *hclogAdapter) Trace(msg string, args ...any) { a.log(hclog.Trace, msg, args) }
func (a *hclogAdapter) Debug(msg string, args ...any) { a.log(hclog.Debug, msg, args) }
func (a *hclogAdapter) Info(msg string, args ...any)  { a.log(hclog.Info, msg, args) }
func (a *hclogAdapter) Warn(msg string, args ...any)  { a.log(hclog.Warn, msg, args) }
func (a *hclogAdapter) Error(msg string, args ...any) { a.log(hclog.Error, msg, args) }

func (a *hclogAdapter) IsTrace() bool { return a.enabled(hclog.Trace) }
func (a *hclogAdapter) IsDebug() bool { return a.enabled(hclog.Debug) }
func (a *hclogAdapter) IsInfo() bool  { return a.enabled(hclog.Info) }
func (a *hclogAdapter) IsWarn() bool  { return a.enabled(hclog.Warn) }
func (a *hclogAdapter) IsError() bool { return a.enabled(hclog.Error) }

// ImpliedArgs returns a copy of the key/value pairs added with With.
func (a *hclogAdapter) ImpliedArgs() []any {
	return append([]any(nil), a.implied...)
}

// With returns a logger that adds args to every message. As in go-hclog, a key
// given again replaces the earlier value.
func (a *hclogAdapter) With(args ...any) hclog.Logger {
	return a.derive(a.name, mergeArgs(a.implied, args))
}

func (a *hclogAdapter) Name() string { return a.name }

// Named returns a logger whose name is this one's followed by "." and name.
func (a *hclogAdapter) Named(name string) hclog.Logger {
	if a.name != "" {
		name = a.name + "." + name
	}
	return a.derive(name, a.implied)
}

func (a *hclogAdapter) ResetNamed(name string) hclog.Logger {
	return a.derive(name, a.implied)
}

func (a *hclogAdapter) SetLevel(level hclog.Level) {
	a.level.Store(int32(level))
}

// GetLevel returns the level set with SetLevel or, without one, the lowest
// level the handler enables.
func (a *hclogAdapter) GetLevel() hclog.Level {
	if level := hclog.Level(a.level.Load()); level != hclog.NoLevel {
		return level
	}
	for _, level := range []hclog.Level{hclog.Trace, hclog.Debug, hclog.Info,
		hclog.Warn, hclog.Error} {
		if a.handler.Enabled(context.Background(), slogLevel(level)) {
			return level
		}
	}
	return hclog.Off
}

// StandardLogger returns a *log.Logger whose lines go through StandardWriter.
func (a *hclogAdapter) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(a.StandardWriter(opts), "", 0)
}

// StandardWriter returns a writer that logs each line it receives. A leading
// "[LEVEL]" tag, optionally after a timestamp, sets the level and is removed.
// opts.ForceLevel, when set, overrides it. Unlike go-hclog, tags are parsed even
// when opts.InferLevels is false, because every hashicorp library writes them.
func (a *hclogAdapter) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	force := hclog.NoLevel
	if opts != nil {
		force = opts.ForceLevel
	}
	return &levelWriter{logger: a, forceLevel: force}
}

// argsToAttrs turns hclog key/value pairs into slog attributes.
func argsToAttrs(args []any) []slog.Attr {
	attrs := make([]slog.Attr, 0, (len(args)+1)/2)
	for i := 0; i < len(args); i += 2 {
		if i+1 == len(args) {
			attrs = append(attrs, slog.Any(extraValueKey, hclogValue(args[i])))
			break
		}
		attrs = append(attrs, slog.Any(argKey(args[i]), hclogValue(args[i+1])))
	}
	return attrs
}

// hclogValue renders go-hclog's formatting wrappers the way go-hclog does.
func hclogValue(value any) any {
	switch v := value.(type) {
	case hclog.Format:
		if len(v) == 0 {
			return ""
		}
		format, ok := v[0].(string)
		if !ok {
			return fmt.Sprint(v...)
		}
		return fmt.Sprintf(format, v[1:]...)
	case hclog.Hex:
		return fmt.Sprintf("0x%x", int(v))
	case hclog.Octal:
		return fmt.Sprintf("0%o", int(v))
	case hclog.Binary:
		return fmt.Sprintf("0b%b", int(v))
	case hclog.Quote:
		return fmt.Sprintf("%q", string(v))
	case error, time.Time, slog.LogValuer:
		// slog renders these itself: errors by their text, times as RFC 3339.
		return value
	case fmt.Stringer:
		// hashicorp libraries pass values such as *raft.Raft and
		// raft.ServerAddress, which JSON would print as {} or not at all.
		return stringValue(v)
	default:
		return value
	}
}

// stringValue calls String, turning a panic, as from a nil pointer receiver,
// into text so that one bad argument does not lose the whole message.
func stringValue(s fmt.Stringer) (text string) {
	defer func() {
		if r := recover(); r != nil {
			text = fmt.Sprintf("!PANIC in String: %v", r)
		}
	}()
	return s.String()
}

// mergeArgs appends added to implied, replacing the value of a key already in
// implied. An odd trailing value is kept at the end.
func mergeArgs(implied, added []any) []any {
	merged := append([]any(nil), implied...)
	for i := 0; i+1 < len(added); i += 2 {
		replaced := false
		for j := 0; j+1 < len(merged); j += 2 {
			if argKey(merged[j]) == argKey(added[i]) {
				merged[j+1] = added[i+1]
				replaced = true
				break
			}
		}
		if !replaced {
			merged = append(merged, added[i], added[i+1])
		}
	}
	if len(added)%2 == 1 {
		merged = append(merged, extraValueKey, added[len(added)-1])
	}
	return merged
}

// argKey returns a key argument as a string, because hclog keys are strings by
// convention but not by type.
func argKey(key any) string {
	if s, ok := key.(string); ok {
		return s
	}
	return fmt.Sprint(key)
}
