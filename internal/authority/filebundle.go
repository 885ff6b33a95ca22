package authority

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"
)

const (
	// DefaultFilePollInterval is how often FileBundle checks its file when
	// NewFileBundle gets a zero interval.
	DefaultFilePollInterval = 5 * time.Second
	// MaxBundleFileSize is the largest bundle file FileBundle reads. A SPIFFE
	// bundle with hundreds of keys stays far below it.
	MaxBundleFileSize = 4 << 20
)

// FileBundle is the local trust domain's bundle as written to a file by
// another CA, for example by `spire-server bundle show -format spiffe`.
// It returns the raw content and leaves parsing to the caller.
//
// NOTE: a writer that truncates the file and then writes it, as a shell
// redirection does, can be caught half way. FileBundle skips an empty file,
// but a partly written one reaches the caller, whose parser must reject it.
// Writers that replace the file by rename avoid this.
type FileBundle struct {
	path     string
	interval time.Duration
	log      *slog.Logger
}

// NewFileBundle returns a FileBundle for path that Changed polls every
// pollInterval (zero means DefaultFilePollInterval). A nil logger discards
// log records. The file need not exist yet.
func NewFileBundle(path string, pollInterval time.Duration, logger *slog.Logger) (
	*FileBundle, error) {
	if path == "" {
		return nil, errors.New("authority: bundle file path is missing; set the path of the " +
			"file that the trust domain's CA writes")
	}
	if pollInterval < 0 {
		return nil, fmt.Errorf("authority: bundle file poll interval %s is negative; use a "+
			"positive interval, or zero for %s", pollInterval, DefaultFilePollInterval)
	}
	if pollInterval == 0 {
		pollInterval = DefaultFilePollInterval
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &FileBundle{path: path, interval: pollInterval, log: logger.With("path", path)}, nil
}

// Read returns the current content of the file.
func (f *FileBundle) Read() ([]byte, error) {
	file, err := os.Open(f.path)
	if err != nil {
		return nil, fmt.Errorf("authority: read bundle file: %w; check that the trust "+
			"domain's CA writes it there", err)
	}
	defer file.Close()
	data, err := io.ReadAll(io.LimitReader(file, MaxBundleFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("authority: read bundle file %s: %w", f.path, err)
	}
	if len(data) > MaxBundleFileSize {
		return nil, fmt.Errorf("authority: bundle file %s is larger than %d bytes; check that "+
			"it is a SPIFFE bundle", f.path, MaxBundleFileSize)
	}
	return data, nil
}

// Changed polls the file every poll interval and sends its content each time
// it differs from the content at the time of the call or from the last sent
// content. An empty file is skipped as a write in progress. The channel is
// closed when ctx is done. Each call polls on its own.
func (f *FileBundle) Changed(ctx context.Context) <-chan []byte {
	out := make(chan []byte)
	st := &pollState{}
	st.last, _ = f.Read()
	go func() {
		defer close(out)
		ticker := time.NewTicker(f.interval)
		defer ticker.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
			}
			data, changed := f.poll(st)
			if !changed {
				continue
			}
			select {
			case out <- data:
				st.last = data
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// pollState is the memory of one Changed loop between polls.
type pollState struct {
	last     []byte // content last sent, or read when Changed was called
	failures int    // consecutive failed reads
}

// poll reads the file once and reports whether its content is new. It logs
// the first failed read and then every 100th, so that a file missing for
// hours does not flood the log.
func (f *FileBundle) poll(st *pollState) ([]byte, bool) {
	data, err := f.Read()
	if err != nil {
		st.failures++
		if st.failures == 1 || st.failures%100 == 0 {
			f.log.Warn("failed to read bundle file; keeping the last content and retrying",
				"error", err, "failed_polls", st.failures, "interval", f.interval)
		}
		return nil, false
	}
	if st.failures > 0 {
		f.log.Info("bundle file readable again", "failed_polls", st.failures)
		st.failures = 0
	}
	if len(data) == 0 || bytes.Equal(data, st.last) {
		return nil, false
	}
	f.log.Info("bundle file changed", "bytes", len(data))
	return data, true
}
