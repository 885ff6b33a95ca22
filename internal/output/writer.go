package output

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bundlex/bundlex/internal/workload"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

const (
	// BundleMapFile is the name of the SPIFFE bundle map in the directory.
	BundleMapFile = "bundles.json"
	// PEMSuffix ends the name of every per-trust-domain PEM file.
	PEMSuffix = ".pem"
	// FileMode is the mode of every file written: bundles are public.
	FileMode os.FileMode = 0o644
	// DirMode is the mode of the directory when the writer creates it.
	DirMode os.FileMode = 0o755
	// DefaultRetryInterval is the default of Writer.RetryInterval.
	DefaultRetryInterval = 5 * time.Second
)

// Writer writes the bundles of snapshots into a directory. Its methods are safe
// for concurrent use. A Writer must not be copied after first use.
type Writer struct {
	// Dir is the output directory. It is created when missing. Required.
	Dir string
	// Logger receives file changes and errors. Nil discards them.
	Logger *slog.Logger
	// RetryInterval is how long Run waits before it repeats a failed write when
	// no source change comes first. Zero means DefaultRetryInterval.
	RetryInterval time.Duration

	mu sync.Mutex
}

// Result lists the files that one Write changed, by name within Dir.
type Result struct {
	Written []string
	Removed []string
}

// Write brings Dir in line with snapshot: it replaces every file whose content
// differs and removes the PEM files of trust domains that are gone. A nil
// snapshot, which a source returns before the node has loaded any state,
// changes nothing. On error some files may already be updated, and each file
// still has either its old or its new content.
func (w *Writer) Write(snapshot *workload.Snapshot) (Result, error) {
	if w.Dir == "" {
		return Result{}, errors.New("output: Writer.Dir is empty; set the output directory")
	}
	if snapshot == nil {
		return Result{}, nil
	}
	files, err := render(snapshot)
	if err != nil {
		return Result{}, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := ensureDir(w.Dir); err != nil {
		return Result{}, err
	}

	var result Result
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		written, err := writeIfChanged(w.Dir, name, files[name])
		if err != nil {
			return result, err
		}
		if written {
			result.Written = append(result.Written, name)
		}
	}
	result.Removed, err = removeStale(w.Dir, files)
	return result, err
}

// Run writes the source's snapshot now and again after every change until ctx
// ends, and then returns nil. A failed write is logged and repeated after
// RetryInterval, or sooner when the source changes.
func (w *Writer) Run(ctx context.Context, source workload.Source) error {
	if w.Dir == "" {
		return errors.New("output: Writer.Dir is empty; set the output directory")
	}
	if w.RetryInterval < 0 {
		return fmt.Errorf("output: invalid RetryInterval %s: use zero for the default of "+
			"%s or a positive duration", w.RetryInterval, DefaultRetryInterval)
	}
	retryInterval := w.RetryInterval
	if retryInterval == 0 {
		retryInterval = DefaultRetryInterval
	}
	changes, cancel := source.Subscribe()
	defer cancel()
	log := w.logger()
	log.Info("bundle file output started", "dir", w.Dir)
	defer log.Info("bundle file output stopped", "dir", w.Dir)

	for {
		err := w.writeAndLog(source.Snapshot())
		if err != nil {
			log.Error("write bundle files failed", "dir", w.Dir, "error", err,
				"retry_in", retryInterval)
		}
		if !waitForChange(ctx, changes, err != nil, retryInterval) {
			return nil
		}
	}
}

// waitForChange waits for a source change, or for retryInterval when retry is
// set. It returns false when ctx ends first.
func waitForChange(ctx context.Context, changes <-chan struct{}, retry bool,
	retryInterval time.Duration) bool {
	var retryTimer <-chan time.Time
	if retry {
		timer := time.NewTimer(retryInterval)
		defer timer.Stop()
		retryTimer = timer.C
	}
	select {
	case <-ctx.Done():
		return false
	case <-changes:
	case <-retryTimer:
	}
	return true
}

func (w *Writer) writeAndLog(snapshot *workload.Snapshot) error {
	result, err := w.Write(snapshot)
	if len(result.Written) > 0 || len(result.Removed) > 0 {
		w.logger().Info("bundle files updated", "dir", w.Dir, "version", snapshot.Version,
			"written", result.Written, "removed", result.Removed)
	}
	return err
}

func (w *Writer) logger() *slog.Logger {
	if w.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return w.Logger
}

// isTrustDomainPEM reports whether name is "<trust domain>.pem" for a valid
// trust domain name.
func isTrustDomainPEM(name string) bool {
	base, ok := strings.CutSuffix(name, PEMSuffix)
	if !ok {
		return false
	}
	_, err := spiffeid.TrustDomainFromString(base)
	return err == nil
}
