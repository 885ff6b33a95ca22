package workload

import (
	"context"
	"crypto/x509"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
)

// timedSet is one update seen by a watcher and the time it arrived.
type timedSet struct {
	at  time.Time
	set *x509bundle.Set
}

// timedWatcher passes every go-spiffe WatchX509Bundles update to a channel.
type timedWatcher struct{ updates chan timedSet }

func (w timedWatcher) OnX509BundlesUpdate(set *x509bundle.Set) {
	w.updates <- timedSet{at: time.Now(), set: set}
}

func (w timedWatcher) OnX509BundlesWatchError(error) {}

// awaitCA returns when w received a set whose local bundle holds ca.
func (w timedWatcher) awaitCA(b *testing.B, ca *x509.Certificate) time.Time {
	deadline := time.After(waitTimeout)
	for {
		select {
		case update := <-w.updates:
			local, ok := update.set.Get(tdLocal)
			if ok && local.HasX509Authority(ca) {
				return update.at
			}
		case <-deadline:
			b.Fatal("watcher never saw the new CA")
		}
	}
}

// BenchmarkPushLatency measures the time from a Source change to the moment
// every go-spiffe WatchX509Bundles client has received the new bundles over
// the Unix socket. Each iteration rotates the local CA once and waits for all
// watchers. The benchmark reports the median and 99th percentile over the
// iterations.
// Run with a fixed count, for example -benchtime 2000x.
func BenchmarkPushLatency(b *testing.B) {
	for _, watchers := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("watchers=%d", watchers), func(b *testing.B) {
			benchmarkPushLatency(b, watchers)
		})
	}
}

func benchmarkPushLatency(b *testing.B, watcherCount int) {
	src := NewMemorySource(&Snapshot{Version: 1,
		Local: newBundle(tdLocal, []*x509.Certificate{newCA(b, tdLocal)})})
	ts := startServer(b, src, nil)
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)

	watchers := make([]timedWatcher, watcherCount)
	for i := range watchers {
		watchers[i] = timedWatcher{updates: make(chan timedSet, 16)}
		go func() {
			_ = workloadapi.WatchX509Bundles(ctx, watchers[i], workloadapi.WithAddr(ts.addr()))
		}()
		<-watchers[i].updates // the first message
	}

	latencies := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ca := newCA(b, tdLocal)
		start := time.Now()
		src.Set(&Snapshot{Version: uint64(i + 2),
			Local: newBundle(tdLocal, []*x509.Certificate{ca})})
		var last time.Time
		for _, w := range watchers {
			if at := w.awaitCA(b, ca); at.After(last) {
				last = at
			}
		}
		latencies = append(latencies, last.Sub(start))
	}
	b.StopTimer()
	slices.Sort(latencies)
	b.ReportMetric(float64(percentile(latencies, 50).Microseconds()), "p50-µs")
	b.ReportMetric(float64(percentile(latencies, 99).Microseconds()), "p99-µs")
}

// percentile returns the nearest-rank percentile p of sorted.
func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := (p*len(sorted) + 99) / 100
	return sorted[max(rank-1, 0)]
}
