package federation

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/stretchr/testify/require"

	"github.com/bundlex/bundlex/bundle"
)

// memoryPollerStore is a PollerStore kept in memory, with the same rollback rule
// as the replicated store.
type memoryPollerStore struct {
	mu       sync.Mutex
	rels     []Relationship
	bundles  map[spiffeid.TrustDomain]*bundle.Bundle
	statuses map[spiffeid.TrustDomain]PeerStatus
	saves    int
}

func newMemoryPollerStore(rels ...Relationship) *memoryPollerStore {
	return &memoryPollerStore{rels: rels, bundles: map[spiffeid.TrustDomain]*bundle.Bundle{},
		statuses: map[spiffeid.TrustDomain]PeerStatus{}}
}

func (s *memoryPollerStore) Relationships() []Relationship {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Relationship(nil), s.rels...)
}

func (s *memoryPollerStore) Stored(td spiffeid.TrustDomain) (*bundle.Bundle, PeerStatus) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.statuses[td]
	st.StoredFetched = s.bundles[td] != nil
	return s.bundles[td], st
}

func (s *memoryPollerStore) Status(td spiffeid.TrustDomain) PeerStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.statuses[td]
}

func (s *memoryPollerStore) TrustBundle(spiffeid.TrustDomain) (*x509bundle.Bundle, bool) {
	return nil, false
}

func (s *memoryPollerStore) SaveBundle(_ context.Context, b *bundle.Bundle, st PeerStatus) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bundles[b.TrustDomain] = b
	s.statuses[b.TrustDomain] = st
	s.saves++
	return nil
}

func (s *memoryPollerStore) SaveStatus(_ context.Context, td spiffeid.TrustDomain, st PeerStatus) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.statuses[td] = st
	return nil
}

// peerServer serves a bundle document that the test can change, and counts requests.
type peerServer struct {
	doc      atomic.Pointer[[]byte]
	status   atomic.Int32
	requests atomic.Int32
}

func (p *peerServer) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	p.requests.Add(1)
	if code := int(p.status.Load()); code != 0 {
		w.WriteHeader(code)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(*p.doc.Load())
}

func (p *peerServer) serve(t *testing.T, ca *testCA, sequence uint64, hint int) {
	t.Helper()
	doc := map[string]any{
		"keys":                []any{x509Key(t, ca.cert)},
		"spiffe_sequence":     sequence,
		"spiffe_refresh_hint": hint,
	}
	data, err := json.Marshal(doc)
	require.NoError(t, err)
	p.doc.Store(&data)
}

func x509Key(t *testing.T, cert *x509.Certificate) map[string]any {
	b := bundle.New(spiffeid.RequireTrustDomainFromString("org-b.test"))
	b.X509Authorities = []*x509.Certificate{cert}
	data, err := bundle.Marshal(b)
	require.NoError(t, err)
	var doc struct {
		Keys []map[string]any `json:"keys"`
	}
	require.NoError(t, json.Unmarshal(data, &doc))
	return doc.Keys[0]
}

func newWebPeer(t *testing.T) (*peerServer, Relationship, *testCA) {
	t.Helper()
	serverCA := newTestCA(t, "web CA")
	peer := &peerServer{}
	url := startTestEndpoint(t, peer, serverCA.issueWebCert(t, "127.0.0.1"))
	rel := Relationship{
		TrustDomain:  spiffeid.RequireTrustDomainFromString("org-b.test"),
		URL:          url + "/",
		Profile:      ProfileHTTPSWeb,
		ExtraRootCAs: []*x509.Certificate{serverCA.cert},
	}
	return peer, rel, newTestCA(t, "org-b bundle CA")
}

func testPollerConfig(t *testing.T) PollerConfig {
	return PollerConfig{
		MinRefresh:      time.Second,
		MaxRefresh:      time.Hour,
		DefaultRefresh:  5 * time.Minute,
		RetryBackoffMax: time.Minute,
		Fetch:           DefaultFetchOptions(),
		Logger:          newTestLogger(t),
	}
}

func TestPollerStoresAndSchedules(t *testing.T) {
	peer, rel, bundleCA := newWebPeer(t)
	peer.serve(t, bundleCA, 5, 120)
	store := newMemoryPollerStore(rel)
	var results []string
	cfg := testPollerConfig(t)
	cfg.Observe = func(_ spiffeid.TrustDomain, result string, _ int, _ time.Duration) {
		results = append(results, result)
	}
	p := NewPoller(store, cfg)

	p.poll(context.Background(), rel)
	stored, st := store.Stored(rel.TrustDomain)
	require.NotNil(t, stored)
	require.Equal(t, uint64(5), stored.Sequence)
	require.Equal(t, uint64(5), st.LastFetchedSequence)
	require.Equal(t, 1, st.X509Keys)
	require.Empty(t, st.LastError)
	// The refresh hint of 120 s sets the next refresh (SPIFFE Federation 4.1).
	require.WithinDuration(t, st.LastSuccess.Add(120*time.Second), st.NextRefresh, time.Second)

	// The same bundle again writes the status only.
	p.poll(context.Background(), rel)
	require.Equal(t, 1, store.saves)
	require.Equal(t, []string{"updated", "unchanged"}, results)
}

func TestPollerKeepsBundleOnFailures(t *testing.T) {
	peer, rel, bundleCA := newWebPeer(t)
	peer.serve(t, bundleCA, 7, 60)
	store := newMemoryPollerStore(rel)
	p := NewPoller(store, testPollerConfig(t))
	ctx := context.Background()
	p.poll(ctx, rel)

	cases := []struct {
		name   string
		change func()
		want   string
	}{
		{"server error", func() { peer.status.Store(503) }, "503"},
		{"malformed JSON", func() {
			peer.status.Store(0)
			data := []byte(`{"keys": [`)
			peer.doc.Store(&data)
		}, "invalid bundle"},
		{"lower sequence", func() { peer.serve(t, newTestCA(t, "other"), 6, 60) },
			"lower than the last fetched 7"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.change()
			p.poll(ctx, rel)
			stored, st := store.Stored(rel.TrustDomain)
			require.Equal(t, uint64(7), stored.Sequence, "the stored bundle stays")
			require.Contains(t, st.LastError, tc.want)
			require.Equal(t, i+1, st.ConsecutiveFailures)
			require.False(t, st.NextRefresh.Before(st.LastAttempt.Add(time.Second)),
				"a retry never comes sooner than the minimum interval")
		})
	}
}

func TestPollerIntervalAndRetryDelay(t *testing.T) {
	p := NewPoller(newMemoryPollerStore(), testPollerConfig(t))
	td := spiffeid.RequireTrustDomainFromString("org-b.test")
	withHint := func(d time.Duration) *bundle.Bundle {
		b := bundle.New(td)
		b.RefreshHint = d
		return b
	}
	require.Equal(t, 5*time.Minute, p.interval(nil), "no bundle: the default")
	require.Equal(t, 5*time.Minute, p.interval(withHint(0)), "no hint: the default")
	require.Equal(t, time.Second, p.interval(withHint(time.Millisecond)), "clamped to minimum")
	require.Equal(t, time.Hour, p.interval(withHint(48*time.Hour)), "clamped to maximum")

	for failures := 1; failures <= 12; failures++ {
		d := p.retryDelay(withHint(10*time.Minute), failures)
		require.GreaterOrEqual(t, d, time.Second, "failure %d", failures)
		require.LessOrEqual(t, d, time.Minute, "failure %d: capped by RetryBackoffMax", failures)
	}
	require.Less(t, p.retryDelay(withHint(10*time.Minute), 1), 2*time.Second)
	require.Greater(t, p.retryDelay(withHint(10*time.Minute), 10), 40*time.Second)
	require.LessOrEqual(t, p.retryDelay(withHint(5*time.Second), 10), 5*time.Second,
		"never slower than the normal interval")
}

func TestPollerRunRefreshAndStop(t *testing.T) {
	peer, rel, bundleCA := newWebPeer(t)
	peer.serve(t, bundleCA, 1, 3600)
	store := newMemoryPollerStore(rel)
	p := NewPoller(store, testPollerConfig(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		p.Run(ctx)
		close(done)
	}()
	waitUntil(t, func() error {
		if peer.requests.Load() != 1 {
			return fmt.Errorf("%d requests", peer.requests.Load())
		}
		return nil
	})
	// The hint is an hour, so only Refresh makes the next request happen now.
	peer.serve(t, bundleCA, 2, 3600)
	p.Refresh(rel.TrustDomain)
	waitUntil(t, func() error {
		if b, _ := store.Stored(rel.TrustDomain); b == nil || b.Sequence != 2 {
			return errors.New("sequence 2 not stored yet")
		}
		return nil
	})
	require.Equal(t, int32(2), peer.requests.Load())
	cancel()
	<-done
}

func waitUntil(t *testing.T, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met in 30s: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
