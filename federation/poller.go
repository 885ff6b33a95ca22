package federation

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/bundlex/bundlex/bundle"
)

// Relationship is one configured federation peer, as the poller needs it.
type Relationship struct {
	TrustDomain  spiffeid.TrustDomain
	URL          string
	Profile      Profile
	EndpointID   spiffeid.ID
	ExtraRootCAs []*x509.Certificate
}

// PeerStatus is the fetch history of one relationship. It is replicated so that a
// new leader resumes each peer's schedule where the old one left it.
type PeerStatus struct {
	LastAttempt         time.Time
	LastSuccess         time.Time
	LastChange          time.Time
	NextRefresh         time.Time
	LastError           string
	ConsecutiveFailures int
	LastFetchedSequence uint64
	HasFetchedSequence  bool
	X509Keys            int
	JWTKeys             int
	SkippedKeys         int
	// StoredFetched reports whether the stored bundle came from a fetch rather
	// than from a bootstrap bundle or an operator override. It is not replicated.
	StoredFetched bool
}

// ErrSequenceRollback is returned by PollerStore.SaveBundle when the store already
// holds a later sequence than the one offered (SPIFFE Federation 4.2).
var ErrSequenceRollback = errors.New("sequence rollback")

// PollerStore is the replicated state the poller reads and writes.
type PollerStore interface {
	Relationships() []Relationship
	// Stored returns the stored bundle of td (nil when none) and its status.
	Stored(td spiffeid.TrustDomain) (*bundle.Bundle, PeerStatus)
	// Status returns the status of td alone, without parsing the bundle.
	Status(td spiffeid.TrustDomain) PeerStatus
	// TrustBundle returns the latest stored bundle of td, local or federated.
	TrustBundle(td spiffeid.TrustDomain) (*x509bundle.Bundle, bool)
	// SaveBundle writes a fetched bundle and its status in one replicated entry.
	SaveBundle(ctx context.Context, b *bundle.Bundle, status PeerStatus) error
	// SaveStatus writes the status alone.
	SaveStatus(ctx context.Context, td spiffeid.TrustDomain, status PeerStatus) error
}

// FetchObserver receives one call per fetch attempt, for metrics.
type FetchObserver func(td spiffeid.TrustDomain, result string, skipped int, d time.Duration)

// PollerConfig sets the schedule and limits of peer polling.
type PollerConfig struct {
	// MinRefresh and MaxRefresh clamp a peer's spiffe_refresh_hint.
	MinRefresh, MaxRefresh time.Duration
	// DefaultRefresh applies to a bundle without a hint (SPIFFE Trust Domain and
	// Bundle 6.1 recommends 5 minutes).
	DefaultRefresh time.Duration
	// RetryBackoffMax caps the delay between retries after failures.
	RetryBackoffMax time.Duration
	Fetch           FetchOptions
	Logger          *slog.Logger
	Observe         FetchObserver
	Now             func() time.Time
}

// Poller fetches every peer's bundle on its schedule. Run it on the Raft leader
// only: it writes through the store and a follower's writes would fail.
type Poller struct {
	cfg   PollerConfig
	store PollerStore

	mu      sync.Mutex
	forced  map[spiffeid.TrustDomain]bool
	running map[spiffeid.TrustDomain]bool
	wake    chan struct{}
}

// NewPoller returns a poller over store.
func NewPoller(store PollerStore, cfg PollerConfig) *Poller {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Poller{
		cfg:     cfg,
		store:   store,
		forced:  map[spiffeid.TrustDomain]bool{},
		running: map[spiffeid.TrustDomain]bool{},
		wake:    make(chan struct{}, 1),
	}
}

// Wake makes the poller re-read the relationships, after one was created,
// updated or deleted.
func (p *Poller) Wake() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Refresh schedules an immediate fetch of td, whatever its next refresh time.
func (p *Poller) Refresh(td spiffeid.TrustDomain) {
	p.mu.Lock()
	p.forced[td] = true
	p.mu.Unlock()
	p.Wake()
}

// Run polls until ctx ends. Each peer is fetched when its replicated NextRefresh
// has passed, so a new leader continues the old leader's schedule without a burst.
func (p *Poller) Run(ctx context.Context) {
	p.cfg.Logger.Info("peer polling started")
	defer p.cfg.Logger.Info("peer polling stopped")
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		next := p.startDue(ctx, &wg)
		delay := max(time.Until(next), 0)
		timer := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-p.wake:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// startDue starts a fetch for every peer that is due and returns when the next
// peer will be due. A peer never has two fetches running at once.
func (p *Poller) startDue(ctx context.Context, wg *sync.WaitGroup) time.Time {
	now := p.cfg.Now()
	next := now.Add(p.cfg.MaxRefresh)
	for _, rel := range p.store.Relationships() {
		status := p.store.Status(rel.TrustDomain)
		p.mu.Lock()
		busy := p.running[rel.TrustDomain]
		due := p.forced[rel.TrustDomain] || !status.NextRefresh.After(now)
		if due && !busy {
			delete(p.forced, rel.TrustDomain)
			p.running[rel.TrustDomain] = true
		}
		p.mu.Unlock()
		if busy {
			continue
		}
		if !due {
			next = minTime(next, status.NextRefresh)
			continue
		}
		wg.Add(1)
		go func(rel Relationship) {
			defer wg.Done()
			p.poll(ctx, rel)
			p.mu.Lock()
			delete(p.running, rel.TrustDomain)
			p.mu.Unlock()
			p.Wake()
		}(rel)
	}
	return next
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// poll fetches one peer once and records the outcome.
func (p *Poller) poll(ctx context.Context, rel Relationship) {
	start := p.cfg.Now()
	stored, status := p.store.Stored(rel.TrustDomain)
	status.LastAttempt = start
	log := p.cfg.Logger.With("trust_domain", rel.TrustDomain.Name(), "peer_url", rel.URL,
		"profile", string(rel.Profile))

	fetched, warnings, err := p.fetch(ctx, rel)
	if err == nil {
		for _, w := range warnings {
			log.Warn("skipped unusable key in peer bundle", "key", w.String())
		}
		err = p.checkSequence(fetched, status)
	}
	if err != nil {
		p.recordFailure(ctx, rel, stored, status, err, log)
		return
	}
	// A bootstrap or operator bundle is replaced by the fetched one even when the
	// content is the same, so that the store records where the bundle came from
	// (SPIFFE Federation 4.2: an override is kept until the next refresh).
	changed := stored == nil || !status.StoredFetched || !bundle.SameKeys(stored, fetched) ||
		stored.Sequence != fetched.Sequence || stored.HasSequence != fetched.HasSequence ||
		stored.RefreshHint != fetched.RefreshHint
	status.LastSuccess = p.cfg.Now()
	status.LastError = ""
	status.ConsecutiveFailures = 0
	status.HasFetchedSequence = fetched.HasSequence
	status.LastFetchedSequence = fetched.Sequence
	status.X509Keys, status.JWTKeys = fetched.KeyCount()
	status.SkippedKeys = len(warnings)
	status.NextRefresh = status.LastSuccess.Add(p.interval(fetched))
	if changed {
		status.LastChange = status.LastSuccess
		err = p.store.SaveBundle(ctx, fetched, status)
	} else {
		err = p.store.SaveStatus(ctx, rel.TrustDomain, status)
	}
	d := p.cfg.Now().Sub(start)
	if err != nil {
		log.Error("store fetched bundle failed", "error", err)
		p.observe(rel.TrustDomain, "store_error", len(warnings), d)
		return
	}
	// SPIFFE Federation 7.6: every fetch is logged for forensics.
	log.Info("fetched peer bundle", "sequence", fetched.Sequence, "changed", changed,
		"x509_keys", status.X509Keys, "jwt_keys", status.JWTKeys,
		"skipped_keys", status.SkippedKeys, "next_refresh", status.NextRefresh, "duration", d)
	result := "unchanged"
	if changed {
		result = "updated"
	}
	p.observe(rel.TrustDomain, result, len(warnings), d)
}

// fetch performs the HTTPS request and parses the response.
func (p *Poller) fetch(ctx context.Context, rel Relationship) (*bundle.Bundle, []bundle.Warning, error) {
	peer := Peer{
		TrustDomain:  rel.TrustDomain,
		URL:          rel.URL,
		Profile:      rel.Profile,
		EndpointID:   rel.EndpointID,
		ExtraRootCAs: rel.ExtraRootCAs,
	}
	if rel.Profile == ProfileHTTPSSPIFFE {
		// SPIFFE Federation 5.2.2.2: the endpoint is authenticated with the latest
		// stored bundle of the endpoint ID's trust domain.
		endpointTD := rel.EndpointID.TrustDomain()
		trust, ok := p.store.TrustBundle(endpointTD)
		if !ok {
			return nil, nil, fmt.Errorf("federation: no bundle of %s is stored to authenticate "+
				"the endpoint %s of %s; supply a bootstrap bundle or federate with %s first",
				endpointTD.Name(), rel.EndpointID, rel.TrustDomain.Name(), endpointTD.Name())
		}
		peer.TrustBundle = trust
	}
	body, err := Fetch(ctx, peer, p.cfg.Fetch)
	if err != nil {
		return nil, nil, err
	}
	b, warnings, err := bundle.Parse(rel.TrustDomain, body)
	if err != nil {
		return nil, nil, fmt.Errorf("federation: bundle from %s: %w", rel.URL, err)
	}
	return b, warnings, nil
}

// checkSequence rejects a bundle older than the last one fetched (SPIFFE Federation
// 4.2: bundles are ordered by spiffe_sequence).
func (p *Poller) checkSequence(b *bundle.Bundle, status PeerStatus) error {
	if b.HasSequence && status.HasFetchedSequence && b.Sequence < status.LastFetchedSequence {
		return fmt.Errorf("federation: %w: peer served spiffe_sequence %d for %s, lower than "+
			"the last fetched %d; keeping the stored bundle", ErrSequenceRollback, b.Sequence,
			b.TrustDomain.Name(), status.LastFetchedSequence)
	}
	return nil
}

func (p *Poller) recordFailure(ctx context.Context, rel Relationship, stored *bundle.Bundle,
	status PeerStatus, fetchErr error, log *slog.Logger) {
	status.LastError = fetchErr.Error()
	status.ConsecutiveFailures++
	status.NextRefresh = p.cfg.Now().Add(p.retryDelay(stored, status.ConsecutiveFailures))
	keeping := "no bundle stored yet"
	if stored != nil {
		keeping = fmt.Sprintf("keeping sequence %d", stored.Sequence)
	}
	log.Warn("fetch peer bundle failed", "error", fetchErr, "failures",
		status.ConsecutiveFailures, "stored", keeping, "next_refresh", status.NextRefresh)
	if err := p.store.SaveStatus(ctx, rel.TrustDomain, status); err != nil {
		log.Error("store peer status failed", "error", err)
	}
	p.observe(rel.TrustDomain, failureReason(fetchErr), 0, p.cfg.Now().Sub(status.LastAttempt))
}

// interval returns the polling interval for a bundle: its refresh hint clamped to
// [MinRefresh, MaxRefresh], or DefaultRefresh without a hint (SPIFFE Federation 4.1).
func (p *Poller) interval(b *bundle.Bundle) time.Duration {
	d := p.cfg.DefaultRefresh
	if b != nil && b.RefreshHint > 0 {
		d = b.RefreshHint
	}
	return min(max(d, p.cfg.MinRefresh), p.cfg.MaxRefresh)
}

// retryDelay doubles from MinRefresh with each failure, capped by the normal
// interval and RetryBackoffMax, with up to 20% jitter that never goes below
// MinRefresh (SPIFFE Federation 6.2: retry at the next interval, not aggressively).
func (p *Poller) retryDelay(stored *bundle.Bundle, failures int) time.Duration {
	limit := min(p.interval(stored), max(p.cfg.RetryBackoffMax, p.cfg.MinRefresh))
	d := p.cfg.MinRefresh
	for i := 1; i < failures && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	jitter := time.Duration(rand.Int64N(int64(d)/5 + 1))
	return max(d-jitter, p.cfg.MinRefresh)
}

func (p *Poller) observe(td spiffeid.TrustDomain, result string, skipped int, d time.Duration) {
	if p.cfg.Observe != nil {
		p.cfg.Observe(td, result, skipped, d)
	}
}

// failureReason names the failure class for metrics.
func failureReason(err error) string {
	switch {
	case errors.Is(err, ErrSequenceRollback):
		return "sequence_rollback"
	case errors.Is(err, bundle.ErrInvalidBundle):
		return "invalid_bundle"
	case errors.Is(err, ErrProfileMismatch):
		return "profile_mismatch"
	case errors.Is(err, ErrServerAuthentication):
		return "server_authentication"
	case errors.Is(err, ErrHTTPStatus):
		return "http_status"
	case errors.Is(err, ErrBundleTooLarge):
		return "bundle_too_large"
	case errors.Is(err, ErrRedirect):
		return "redirect"
	case errors.Is(err, ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, ErrConnection):
		return "connection"
	}
	return "fetch_error"
}
