package output

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bundlex/bundlex/bundle"
	"github.com/bundlex/bundlex/internal/workload"
	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/stretchr/testify/require"
)

// parseBundleMapFile reads and parses bundles.json, returning the first problem.
func parseBundleMapFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var doc struct {
		TrustDomains map[string]json.RawMessage `json:"trust_domains"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("%d bytes: %w", len(data), err)
	}
	if len(doc.TrustDomains) == 0 {
		return fmt.Errorf("no trust domains in %d bytes", len(data))
	}
	for name, raw := range doc.TrustDomains {
		if _, err := spiffebundle.Parse(spiffeid.RequireTrustDomainFromString(name), raw); err != nil {
			return err
		}
	}
	return nil
}

func parsePEMFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	_, err = bundle.ParsePEM(tdB, data)
	return err
}

// TestWriteIsAtomicForReaders rotates org-b.test's CAs many times while
// readers parse the files in a loop. A writer that truncated and rewrote a
// file in place would let a reader see an empty or partial file.
func TestWriteIsAtomicForReaders(t *testing.T) {
	const rotations = 100
	f := newFixture(t)
	dir := outputDir(t)
	w := &Writer{Dir: dir}
	_, err := w.Write(f.snapshot)
	require.NoError(t, err)

	pool := make([]*x509.Certificate, 8)
	for i := range pool {
		pool[i] = newCA(t, tdB)
	}
	stop := make(chan struct{})
	readErrors := make(chan error, 2)
	var reads atomic.Int64
	var readers sync.WaitGroup
	for _, check := range []struct {
		path  string
		parse func(string) error
	}{
		{filepath.Join(dir, BundleMapFile), parseBundleMapFile},
		{filepath.Join(dir, "org-b.test.pem"), parsePEMFile},
	} {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := check.parse(check.path); err != nil {
					readErrors <- fmt.Errorf("read %s: %w", check.path, err)
					return
				}
				reads.Add(1)
			}
		}()
	}

	for i := range rotations {
		// One to eight CAs, so that consecutive files differ in length.
		certs := pool[:i%len(pool)+1]
		_, err := w.Write(withFederated(f.snapshot, func(fed map[spiffeid.TrustDomain]*bundle.Bundle) {
			fed[tdB] = newBundle(tdB, certs)
		}))
		require.NoError(t, err)
	}
	close(stop)
	readers.Wait()
	close(readErrors)
	for err := range readErrors {
		require.NoError(t, err)
	}
	require.Greater(t, reads.Load(), int64(rotations), "the readers must overlap the writes")
}

func TestRunFollowsSource(t *testing.T) {
	f := newFixture(t)
	dir := outputDir(t)
	src := workload.NewMemorySource(nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- (&Writer{Dir: dir}).Run(ctx, src) }()

	pemB := filepath.Join(dir, "org-b.test.pem")
	src.Set(f.snapshot)
	require.Eventually(t, func() bool { return parsePEMFile(pemB) == nil },
		waitTimeout, 5*time.Millisecond, "first write never happened")

	newCAB := newCA(t, tdB)
	src.Set(withFederated(f.snapshot, func(fed map[spiffeid.TrustDomain]*bundle.Bundle) {
		fed[tdB] = newBundle(tdB, []*x509.Certificate{f.caB, newCAB})
	}))
	require.Eventually(t, func() bool {
		data, err := os.ReadFile(pemB)
		if err != nil {
			return false
		}
		b, err := bundle.ParsePEM(tdB, data)
		return err == nil && len(b.X509Authorities) == 2
	}, waitTimeout, 5*time.Millisecond, "rotation never written")

	src.Set(withFederated(f.snapshot,
		func(fed map[spiffeid.TrustDomain]*bundle.Bundle) { delete(fed, tdB) }))
	require.Eventually(t, func() bool {
		_, err := os.Stat(pemB)
		return os.IsNotExist(err)
	}, waitTimeout, 5*time.Millisecond, "PEM file of the removed trust domain kept")

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(waitTimeout):
		t.Fatal("Run did not return after its context ended")
	}
}

func TestRunRetriesFailedWrite(t *testing.T) {
	f := newFixture(t)
	blocker := filepath.Join(t.TempDir(), "blocker")
	require.NoError(t, os.WriteFile(blocker, nil, 0o600))
	dir := filepath.Join(blocker, "bundles")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	failures := make(chan string, 1)
	w := &Writer{Dir: dir, RetryInterval: 10 * time.Millisecond,
		Logger: slog.New(errorSignal{messages: failures})}
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, workload.NewMemorySource(f.snapshot)) }()

	// The first write fails because the parent of Dir is a file. Once it is
	// gone, a retry succeeds although the source never changes.
	select {
	case message := <-failures:
		require.Equal(t, "write bundle files failed", message)
	case <-time.After(waitTimeout):
		t.Fatal("the first write did not fail")
	}
	require.NoError(t, os.Remove(blocker))
	require.Eventually(t, func() bool {
		return parseBundleMapFile(filepath.Join(dir, BundleMapFile)) == nil
	}, waitTimeout, 5*time.Millisecond, "no retry wrote the files")
	cancel()
	require.NoError(t, <-done)
}

// errorSignal is a slog handler that passes the message of every error record
// to a channel, dropping it when the channel is full.
type errorSignal struct{ messages chan string }

func (h errorSignal) Enabled(context.Context, slog.Level) bool { return true }

func (h errorSignal) Handle(_ context.Context, record slog.Record) error {
	if record.Level >= slog.LevelError {
		select {
		case h.messages <- record.Message:
		default:
		}
	}
	return nil
}

func (h errorSignal) WithAttrs([]slog.Attr) slog.Handler { return h }

func (h errorSignal) WithGroup(string) slog.Handler { return h }

func TestRunRejectsBadSettings(t *testing.T) {
	src := workload.NewMemorySource(nil)
	cases := []struct {
		name   string
		writer *Writer
		want   string
	}{
		{"directory empty", &Writer{}, "output: Writer.Dir is empty"},
		{"negative retry interval", &Writer{Dir: t.TempDir(), RetryInterval: -time.Second},
			"invalid RetryInterval -1s"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.writer.Run(context.Background(), src)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// TestRunRetryIgnoresChanges breaks the directory and then changes the source
// many times. Every change used to start a new write at once, so a broken
// directory and a busy source made a busy loop. The retry must wait for
// RetryInterval, here longer than the test.
func TestRunRetryIgnoresChanges(t *testing.T) {
	f := newFixture(t)
	dir := outputDir(t)
	require.NoError(t, os.MkdirAll(dir, DirMode))
	// A directory in place of bundles.json makes every write fail.
	require.NoError(t, os.Mkdir(filepath.Join(dir, BundleMapFile), 0o755))
	src := workload.NewMemorySource(f.snapshot)
	var attempts atomic.Int64
	failed := make(chan error, 1)
	w := &Writer{Dir: dir, RetryInterval: time.Hour, Observe: func(err error) {
		attempts.Add(1)
		select {
		case failed <- err:
		default:
		}
	}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, src) }()

	select {
	case err := <-failed:
		require.ErrorContains(t, err, "bundles.json")
	case <-time.After(waitTimeout):
		t.Fatal("the first write was not observed")
	}
	for i := range 50 {
		next := withFederated(f.snapshot, func(map[spiffeid.TrustDomain]*bundle.Bundle) {})
		next.Version += uint64(i)
		src.Set(next)
	}
	require.Never(t, func() bool { return attempts.Load() > 1 }, 500*time.Millisecond,
		5*time.Millisecond, "a source change cut the retry interval short")
	cancel()
	require.NoError(t, <-done)
}

func TestRunObservesOutcome(t *testing.T) {
	f := newFixture(t)
	dir := outputDir(t)
	require.NoError(t, os.MkdirAll(dir, DirMode))
	blocker := filepath.Join(dir, BundleMapFile)
	require.NoError(t, os.Mkdir(blocker, 0o755))
	src := workload.NewMemorySource(nil)
	outcomes := make(chan error, 16)
	w := &Writer{Dir: dir, RetryInterval: 10 * time.Millisecond,
		Observe: func(err error) { outcomes <- err }}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, src) }()

	next := func() error {
		select {
		case err := <-outcomes:
			return err
		case <-time.After(waitTimeout):
			t.Fatal("no write outcome observed")
			return nil
		}
	}
	// A nil snapshot is not a write, so the first outcome is of this snapshot.
	src.Set(f.snapshot)
	require.Error(t, next())
	require.NoError(t, os.Remove(blocker))
	for {
		if err := next(); err == nil {
			break
		}
	}
	require.FileExists(t, blocker)
	cancel()
	require.NoError(t, <-done)
}
