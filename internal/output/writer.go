package output

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
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
	// LockFile is the file in the directory that a Writer holds an exclusive
	// lock on, so that two nodes never write into the same directory. It is
	// never removed, because removing a lock file lets two holders race.
	LockFile = ".bundlex.lock"
)

// Writer writes the bundles of snapshots into a directory. Its methods are safe
// for concurrent use. A Writer must not be copied after first use.
type Writer struct {
	// Dir is the output directory. It is created when missing. Required.
	Dir string
	// Logger receives file changes and errors. Nil discards them.
	Logger *slog.Logger
	// RetryInterval is how long Run waits before it repeats a failed write.
	// Source changes during the wait do not cut it short: the retry writes the
	// latest snapshot. Zero means DefaultRetryInterval.
	RetryInterval time.Duration
	// Observe, when set, receives the outcome of every write of a snapshot in
	// Run: nil when the directory matches the snapshot, or the error.
	Observe func(err error)

	mu sync.Mutex
	// lock is the open lock file while the Writer holds the directory lock.
	lock *os.File
}

// Result lists the files that one Write changed, by name within Dir.
type Result struct {
	Written []string
	Removed []string
}

// Lock creates Dir when missing and takes an exclusive lock on its LockFile,
// so that no other Writer, in this process or another, writes into the
// directory. It returns an error naming the directory when another Writer holds
// the lock. Write and Run take the lock themselves, and Lock lets a caller fail
// at start. The lock is held until Close.
func (w *Writer) Lock() error {
	if w.Dir == "" {
		return errors.New("output: Writer.Dir is empty; set the output directory")
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lockLocked()
}

// lockLocked is Lock with w.mu held.
func (w *Writer) lockLocked() error {
	if w.lock != nil {
		return nil
	}
	if err := ensureDir(w.Dir); err != nil {
		return err
	}
	path := filepath.Join(w.Dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, FileMode)
	if err != nil {
		return fmt.Errorf("output: open the lock file %s: %w", path, err)
	}
	held, err := tryLock(f)
	if err != nil {
		f.Close()
		return fmt.Errorf("output: lock %s: %w", path, err)
	}
	if !held {
		f.Close()
		return fmt.Errorf("output: the output directory %s is in use by another bundlex "+
			"node, which holds the lock on %s; give each node its own output directory",
			w.Dir, path)
	}
	w.lock = f
	return nil
}

// Close releases the directory lock. The Writer takes it again on the next
// Write or Run.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.lock == nil {
		return nil
	}
	err := w.lock.Close()
	w.lock = nil
	if err != nil {
		return fmt.Errorf("output: release the lock on %s: %w", w.Dir, err)
	}
	return nil
}

// Write brings Dir in line with snapshot: it replaces every file whose content
// differs and removes the files it wrote earlier that the snapshot no longer
// has, such as the PEM file of a trust domain that is gone. It removes only
// files that ManifestFile lists. A nil snapshot, which a source returns before
// the node has loaded its state, changes nothing. On error some files may
// already be updated, and each file still has either its old or its new
// content.
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
	if err := w.lockLocked(); err != nil {
		return Result{}, err
	}
	previous, err := readManifest(w.Dir)
	if err != nil {
		return Result{}, err
	}
	names := slices.Sorted(maps.Keys(files))
	// List every new name before its file exists, so that a crash never leaves
	// a file of the writer that the manifest does not list.
	listed := union(previous, names)
	if !slices.Equal(listed, previous) {
		if err := writeManifest(w.Dir, listed); err != nil {
			return Result{}, err
		}
	}

	var result Result
	for _, name := range names {
		written, err := writeIfChanged(w.Dir, name, files[name])
		if err != nil {
			return result, err
		}
		if written {
			result.Written = append(result.Written, name)
		}
	}
	result.Removed, err = removeStale(w.Dir, previous, files)
	if err != nil {
		return result, err
	}
	if !slices.Equal(listed, names) {
		err = writeManifest(w.Dir, names)
	}
	return result, err
}

// Run writes the source's snapshot now and again after every change until ctx
// ends, then releases the directory lock and returns nil. A failed write, also
// one that cannot take the lock, is logged and repeated after RetryInterval
// with the snapshot of that moment. Call Lock first to fail at start instead.
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
	defer w.Close()
	changes, cancel := source.Subscribe()
	defer cancel()
	log := w.logger()
	log.Info("bundle file output started", "dir", w.Dir)
	defer log.Info("bundle file output stopped", "dir", w.Dir)

	for {
		snapshot := source.Snapshot()
		err := w.writeAndLog(snapshot)
		if snapshot != nil && w.Observe != nil {
			w.Observe(err)
		}
		wait := changes
		if err != nil {
			log.Error("write bundle files failed", "dir", w.Dir, "error", err,
				"retry_in", retryInterval)
			// Changes keep arriving while the directory is broken, for example
			// while the store replays its log, and must not turn the retry
			// into a busy loop. The subscription keeps the latest one.
			wait = nil
		}
		if !waitFor(ctx, wait, err != nil, retryInterval) {
			return nil
		}
	}
}

// waitFor waits for a value on changes, or for retryInterval when retry is set.
// A nil changes channel is never ready. It returns false when ctx ends first.
func waitFor(ctx context.Context, changes <-chan struct{}, retry bool,
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
