package workload

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bundlex/bundlex/bundle"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// fixture is a local trust domain federated with org-b.test and org-c.test.
type fixture struct {
	localCAs   []*x509.Certificate
	caB        *x509.Certificate
	keyA, keyB jwtKey
	snapshot   *Snapshot
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{
		localCAs: []*x509.Certificate{newCA(t, tdLocal), newCA(t, tdLocal)},
		caB:      newCA(t, tdB),
		keyA:     newJWTKey(t, "a1"),
		keyB:     newJWTKey(t, "b1"),
	}
	f.snapshot = &Snapshot{
		Version: 10,
		Local:   newBundle(tdLocal, f.localCAs, f.keyA),
		Federated: map[spiffeid.TrustDomain]*bundle.Bundle{
			tdB: newBundle(tdB, []*x509.Certificate{f.caB}, f.keyB),
			// org-c.test publishes JWT keys only.
			tdC: newBundle(tdC, nil, newJWTKey(t, "c1")),
		},
	}
	return f
}

// next returns a copy of the snapshot with a higher version and the federated
// bundles replaced by edit's result.
func next(s *Snapshot, edit func(map[spiffeid.TrustDomain]*bundle.Bundle)) *Snapshot {
	out := &Snapshot{Version: s.Version + 1, Local: s.Local,
		Federated: make(map[spiffeid.TrustDomain]*bundle.Bundle)}
	for td, b := range s.Federated {
		out.Federated[td] = b
	}
	edit(out.Federated)
	return out
}

func requireSameCerts(t *testing.T, want, got []*x509.Certificate) {
	t.Helper()
	require.Len(t, got, len(want))
	for _, cert := range want {
		require.True(t, slices.ContainsFunc(got, cert.Equal), "certificate %s missing",
			cert.Subject)
	}
}

func TestFetchX509BundlesWithGoSPIFFE(t *testing.T) {
	f := newFixture(t)
	ts := startServer(t, NewMemorySource(f.snapshot), nil)
	ctx := testContext(t)
	set, err := workloadapi.FetchX509Bundles(ctx, workloadapi.WithAddr(ts.addr()))
	require.NoError(t, err)
	require.Equal(t, 3, set.Len())

	local, err := set.GetX509BundleForTrustDomain(tdLocal)
	require.NoError(t, err)
	requireSameCerts(t, f.localCAs, local.X509Authorities())
	peerB, err := set.GetX509BundleForTrustDomain(tdB)
	require.NoError(t, err)
	requireSameCerts(t, []*x509.Certificate{f.caB}, peerB.X509Authorities())
	peerC, err := set.GetX509BundleForTrustDomain(tdC)
	require.NoError(t, err)
	require.Empty(t, peerC.X509Authorities(), "a trust domain without CAs trusts nothing")
}

// x509Watcher records what go-spiffe's WatchX509Bundles delivers.
type x509Watcher struct {
	mu      sync.Mutex
	latest  *x509bundle.Set
	updates chan struct{}
}

func (w *x509Watcher) OnX509BundlesUpdate(set *x509bundle.Set) {
	w.mu.Lock()
	w.latest = set
	w.mu.Unlock()
	select {
	case w.updates <- struct{}{}:
	default:
	}
}

func (w *x509Watcher) OnX509BundlesWatchError(error) {}

// waitFor waits until cond holds for the latest set.
func (w *x509Watcher) waitFor(t *testing.T, what string, cond func(*x509bundle.Set) bool) {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		w.mu.Lock()
		latest := w.latest
		w.mu.Unlock()
		if latest != nil && cond(latest) {
			return
		}
		select {
		case <-w.updates:
		case <-deadline:
			t.Fatalf("watcher never saw %s", what)
		}
	}
}

func TestWatchX509BundlesSeesChanges(t *testing.T) {
	f := newFixture(t)
	src := NewMemorySource(f.snapshot)
	ts := startServer(t, src, nil)
	ctx, cancel := context.WithCancel(testContext(t))
	watcher := &x509Watcher{updates: make(chan struct{}, 1)}
	watchDone := make(chan error, 1)
	go func() {
		watchDone <- workloadapi.WatchX509Bundles(ctx, watcher, workloadapi.WithAddr(ts.addr()))
	}()
	watcher.waitFor(t, "the first bundles", func(set *x509bundle.Set) bool {
		return set.Len() == 3
	})

	// Rotation: org-b.test publishes a second CA next to the first.
	newCAB := newCA(t, tdB)
	src.Set(next(src.Snapshot(), func(fed map[spiffeid.TrustDomain]*bundle.Bundle) {
		fed[tdB] = newBundle(tdB, []*x509.Certificate{f.caB, newCAB}, f.keyB)
	}))
	watcher.waitFor(t, "the new org-b.test CA", func(set *x509bundle.Set) bool {
		b, ok := set.Get(tdB)
		return ok && b.HasX509Authority(newCAB)
	})

	// Ending a relationship removes the trust domain from the next message.
	src.Set(next(src.Snapshot(), func(fed map[spiffeid.TrustDomain]*bundle.Bundle) {
		delete(fed, tdB)
	}))
	watcher.waitFor(t, "org-b.test removed", func(set *x509bundle.Set) bool {
		return !set.Has(tdB) && set.Has(tdLocal) && set.Has(tdC)
	})

	cancel()
	select {
	case err := <-watchDone:
		require.Equal(t, codes.Canceled, status.Code(err), "watch ended with %v", err)
	case <-time.After(waitTimeout):
		t.Fatal("WatchX509Bundles did not return after its context ended")
	}
}

// snapshotSignal is a MemorySource that signals every Snapshot call, so that a
// test can wait until a stream has read the state after a change.
type snapshotSignal struct {
	*MemorySource
	calls chan struct{}
}

func (s *snapshotSignal) Snapshot() *Snapshot {
	snapshot := s.MemorySource.Snapshot()
	select {
	case s.calls <- struct{}{}:
	default:
	}
	return snapshot
}

func (s *snapshotSignal) waitForRead(t *testing.T) {
	t.Helper()
	select {
	case <-s.calls:
	case <-time.After(waitTimeout):
		t.Fatal("no stream read the snapshot after the change")
	}
}

// editB returns a snapshot edit that replaces org-b.test's bundle by a copy
// changed by change.
func editB(change func(*bundle.Bundle)) func(map[spiffeid.TrustDomain]*bundle.Bundle) {
	return func(fed map[spiffeid.TrustDomain]*bundle.Bundle) {
		b := fed[tdB].Clone()
		change(b)
		fed[tdB] = b
	}
}

func TestStreamsSkipUnrelatedChanges(t *testing.T) {
	newCAB := newCA(t, tdB)
	newKeyB := newJWTKey(t, "b2")
	addCA := editB(func(b *bundle.Bundle) {
		b.X509Authorities = append(b.X509Authorities, newCAB)
	})
	addJWTKey := editB(func(b *bundle.Bundle) {
		b.JWTAuthorities = append(b.JWTAuthorities, newKeyB.authority)
	})
	cases := []struct {
		name               string
		open               openStream
		unrelated, related func(map[spiffeid.TrustDomain]*bundle.Bundle)
		wantInB            []byte
	}{
		{"x509 stream skips JWT key", openX509Stream, addJWTKey, addCA, newCAB.Raw},
		{"jwt stream skips CA", openJWTStream, addCA, addJWTKey, []byte(`"kid":"b2"`)},
		{"x509 stream skips sequence", openX509Stream,
			editB(func(b *bundle.Bundle) { b.Sequence, b.HasSequence = 8, true }), addCA, newCAB.Raw},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			src := &snapshotSignal{MemorySource: NewMemorySource(f.snapshot),
				calls: make(chan struct{}, 1)}
			ts := startServer(t, src, nil)
			recv := tc.open(t, withHeader(testContext(t)), rawClient(t, ts))
			first := recv()
			src.waitForRead(t)

			src.Set(next(src.MemorySource.Snapshot(), tc.unrelated))
			// Once the stream has read the changed state, a server that did not
			// compare content would already be sending a second, equal message.
			src.waitForRead(t)
			src.Set(next(src.MemorySource.Snapshot(), tc.related))

			second := recv()
			require.NotEqual(t, first[tdB.IDString()], second[tdB.IDString()],
				"the message after the unrelated change must carry the related one")
			require.Contains(t, string(second[tdB.IDString()]), string(tc.wantInB))
		})
	}
}

// openStream opens a bundle stream and returns a function that receives the
// next message's bundles.
type openStream func(*testing.T, context.Context,
	workload.SpiffeWorkloadAPIClient) func() map[string][]byte

func openX509Stream(t *testing.T, ctx context.Context,
	client workload.SpiffeWorkloadAPIClient) func() map[string][]byte {
	stream, err := client.FetchX509Bundles(ctx, &workload.X509BundlesRequest{})
	require.NoError(t, err)
	return func() map[string][]byte {
		resp, err := stream.Recv()
		require.NoError(t, err)
		return resp.Bundles
	}
}

func openJWTStream(t *testing.T, ctx context.Context,
	client workload.SpiffeWorkloadAPIClient) func() map[string][]byte {
	stream, err := client.FetchJWTBundles(ctx, &workload.JWTBundlesRequest{})
	require.NoError(t, err)
	return func() map[string][]byte {
		resp, err := stream.Recv()
		require.NoError(t, err)
		return resp.Bundles
	}
}

func TestJWTSourceSeesChanges(t *testing.T) {
	f := newFixture(t)
	src := NewMemorySource(f.snapshot)
	ts := startServer(t, src, nil)
	ctx := testContext(t)
	source, err := workloadapi.NewJWTSource(ctx,
		workloadapi.WithClientOptions(workloadapi.WithAddr(ts.addr())))
	require.NoError(t, err)
	t.Cleanup(func() { source.Close() })

	local, err := source.GetJWTBundleForTrustDomain(tdLocal)
	require.NoError(t, err)
	require.True(t, local.HasJWTAuthority("a1"))
	peerB, err := source.GetJWTBundleForTrustDomain(tdB)
	require.NoError(t, err)
	require.True(t, peerB.HasJWTAuthority("b1"))
	require.Len(t, local.JWTAuthorities(), 1)

	// The local authority publishes a second key ahead of use.
	keyA2 := newJWTKey(t, "a2")
	src.Set(&Snapshot{Version: 11, Local: newBundle(tdLocal, f.localCAs, f.keyA, keyA2),
		Federated: f.snapshot.Federated})
	waitForSource(t, source.Updated(), "local key a2", func() bool {
		b, err := source.GetJWTBundleForTrustDomain(tdLocal)
		return err == nil && b.HasJWTAuthority("a2")
	})
}

// waitForSource waits on a go-spiffe source's update channel until cond holds.
func waitForSource(t *testing.T, updated <-chan struct{}, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(waitTimeout)
	for !cond() {
		select {
		case <-updated:
		case <-deadline:
			t.Fatalf("source never saw %s", what)
		}
	}
}

func TestJWTBundlesCarryOnlyJWTKeys(t *testing.T) {
	f := newFixture(t)
	local := f.snapshot.Local.Clone()
	local.WITAuthorities = append(local.WITAuthorities, newJWTKey(t, "w1").authority)
	local.Sequence, local.HasSequence = 5, true
	local.RefreshHint = time.Minute
	ts := startServer(t, NewMemorySource(&Snapshot{Version: 1, Local: local}), nil)
	stream, err := rawClient(t, ts).FetchJWTBundles(withHeader(testContext(t)),
		&workload.JWTBundlesRequest{})
	require.NoError(t, err)
	resp, err := stream.Recv()
	require.NoError(t, err)
	require.Len(t, resp.Bundles, 1)

	var jwks struct {
		Keys []map[string]any `json:"keys"`
	}
	require.NoError(t, json.Unmarshal(resp.Bundles[tdLocal.IDString()], &jwks))
	require.Len(t, jwks.Keys, 1, "x509-svid and wit-svid keys must be left out")
	require.Equal(t, "a1", jwks.Keys[0]["kid"])
	require.Equal(t, bundle.UseJWTSVID, jwks.Keys[0]["use"])
	require.NotContains(t, string(resp.Bundles[tdLocal.IDString()]), "spiffe_sequence")
}
