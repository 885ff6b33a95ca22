package e2e

import (
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
)

// Settings of the bundle endpoint load.
const (
	// endpointLoadRate is the number of GET requests per second, spread evenly.
	endpointLoadRate = 20
	// endpointLoadTimeout bounds one request, TLS handshake included.
	endpointLoadTimeout = 5 * time.Second
	// endpointLoadMaxInFlight bounds concurrent requests, so that a stuck server
	// cannot make the load grow without limit. A tick that finds the bound
	// reached counts as a failed request.
	endpointLoadMaxInFlight = 2 * endpointLoadRate
	// endpointLoadMaxReported is how many failures the report quotes.
	endpointLoadMaxReported = 10
)

// endpointLoad sends endpointLoadRate requests per second to the https_spiffe
// bundle endpoints of its targets in turn. Each response must have status 200,
// Content-Type application/json and a body that parses as a SPIFFE bundle. Its
// spiffe_sequence and X-Bundlex-Index header must never go down on one target.
// The targets must not restart during the load, because a restarted node
// reports its applied index from zero until it catches up.
type endpointLoad struct {
	targets []*dockerNode
	td      spiffeid.TrustDomain
	trust   *latestBundle
	client  *http.Client
	stop    chan struct{}
	done    chan struct{}
	slots   chan struct{}
	started time.Time

	mu         sync.Mutex
	sent       int
	succeeded  int
	failures   []string
	failed     int
	latencies  []time.Duration
	last       map[string]endpointAnswer
	perTarget  map[string]int
	maxLatency time.Duration
	// leaderless counts successful responses whose X-Bundlex-Known-Leader
	// header was false: served while the target knew no leader.
	leaderless int
}

// endpointAnswer is what one successful request returned.
type endpointAnswer struct {
	sequence    uint64
	index       uint64
	knownLeader bool
}

// startEndpointLoad starts the load on targets. trusted authenticates their
// endpoints (SPIFFE Federation 5.2.2.4: the server's X509-SVID must verify
// against the bundle and carry the endpoint SPIFFE ID).
func startEndpointLoad(t *testing.T, trusted *spiffebundle.Bundle,
	targets ...*dockerNode) *endpointLoad {
	t.Helper()
	endpointID := spiffeid.RequireFromPath(trusted.TrustDomain(), "/bundlex")
	trust := &latestBundle{bundle: trusted}
	l := &endpointLoad{
		targets: targets,
		td:      trusted.TrustDomain(),
		trust:   trust,
		// Every request makes a new connection, so that each one is a TLS
		// handshake that the server's current SVID must pass. The Transport sets
		// no Proxy, so the requests go to the containers whatever the
		// environment names.
		client: &http.Client{
			Transport: &http.Transport{
				TLSClientConfig: tlsconfig.TLSClientConfig(trust,
					tlsconfig.AuthorizeID(endpointID)),
				DisableKeepAlives: true,
			},
			Timeout: endpointLoadTimeout,
		},
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
		slots:     make(chan struct{}, endpointLoadMaxInFlight),
		last:      map[string]endpointAnswer{},
		perTarget: map[string]int{},
		started:   time.Now(),
	}
	go l.run()
	t.Cleanup(func() { l.halt() })
	return l
}

func (l *endpointLoad) run() {
	defer close(l.done)
	var inFlight sync.WaitGroup
	defer inFlight.Wait()
	ticker := time.NewTicker(time.Second / endpointLoadRate)
	defer ticker.Stop()
	for i := 0; ; i++ {
		select {
		case <-l.stop:
			return
		case <-ticker.C:
		}
		target := l.targets[i%len(l.targets)]
		select {
		case l.slots <- struct{}{}:
		default:
			l.record(target, 0, endpointAnswer{}, fmt.Errorf("%d requests still in flight",
				cap(l.slots)))
			continue
		}
		inFlight.Go(func() {
			defer func() { <-l.slots }()
			start := time.Now()
			answer, err := l.fetch(target)
			l.record(target, time.Since(start), answer, err)
		})
	}
}

// fetch sends one GET to target's endpoint.
func (l *endpointLoad) fetch(target *dockerNode) (endpointAnswer, error) {
	var answer endpointAnswer
	ctx, cancel := context.WithTimeout(context.Background(), endpointLoadTimeout)
	defer cancel()
	url := containerURL(target.container, dockerEndpointPort, "/")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return answer, err
	}
	resp, err := l.client.Do(req)
	if err != nil {
		return answer, err
	}
	defer resp.Body.Close()

	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer, fmt.Errorf("read the body from %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return answer, fmt.Errorf("GET %s returned %d: %s", url, resp.StatusCode, body)
	}
	mediaType, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || mediaType != "application/json" {
		return answer, fmt.Errorf("GET %s returned Content-Type %q, not application/json", url,
			resp.Header.Get("Content-Type"))
	}

	b, err := spiffebundle.Parse(l.td, body)
	if err != nil {
		return answer, fmt.Errorf("GET %s returned no SPIFFE bundle: %w", url, err)
	}
	seq, ok := b.SequenceNumber()
	if !ok {
		return answer, fmt.Errorf("GET %s returned a bundle without spiffe_sequence", url)
	}
	l.trust.update(b, seq)

	index, err := strconv.ParseUint(resp.Header.Get("X-Bundlex-Index"), 10, 64)
	if err != nil {
		return answer, fmt.Errorf("GET %s: invalid X-Bundlex-Index header: %w", url, err)
	}
	answer = endpointAnswer{sequence: seq, index: index,
		knownLeader: resp.Header.Get("X-Bundlex-Known-Leader") == "true"}
	return answer, nil
}

// latestBundle authenticates the endpoints with the newest bundle they served,
// so that they may switch to an SVID from a rotated CA. A federation peer does
// the same: SPIFFE Federation 5.2.2.4 authenticates the endpoint with the latest
// fetched bundle after the first fetch.
type latestBundle struct {
	mu     sync.Mutex
	bundle *spiffebundle.Bundle
}

// GetX509BundleForTrustDomain implements x509bundle.Source.
func (s *latestBundle) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (
	*x509bundle.Bundle, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bundle.GetX509BundleForTrustDomain(td)
}

// update keeps b when its sequence is higher than the kept bundle's.
func (s *latestBundle) update(b *spiffebundle.Bundle, seq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if kept, _ := s.bundle.SequenceNumber(); seq > kept {
		s.bundle = b
	}
}

// record counts one request.
func (l *endpointLoad) record(target *dockerNode, latency time.Duration,
	answer endpointAnswer, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sent++
	l.perTarget[target.alias]++
	prev := l.last[target.alias]
	switch {
	case err != nil:
	case answer.sequence < prev.sequence:
		// SPIFFE Trust Domain and Bundle 4.1.1: spiffe_sequence only grows.
		err = fmt.Errorf("%s served sequence %d after %d", target.alias, answer.sequence,
			prev.sequence)
	case answer.index < prev.index:
		err = fmt.Errorf("%s reported applied index %d after %d", target.alias,
			answer.index, prev.index)
	}
	if err != nil {
		l.failed++
		if len(l.failures) < endpointLoadMaxReported {
			l.failures = append(l.failures, fmt.Sprintf("%s at +%s: %v", target.alias,
				time.Since(l.started).Round(time.Millisecond), err))
		}
		return
	}
	l.succeeded++
	if !answer.knownLeader {
		l.leaderless++
	}
	l.last[target.alias] = answer
	l.latencies = append(l.latencies, latency)
	l.maxLatency = max(l.maxLatency, latency)
}

// halt stops sending and waits for the requests in flight. It is idempotent.
func (l *endpointLoad) halt() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	<-l.done
}

// endpointLoadReport sums up a load run.
type endpointLoadReport struct {
	duration  time.Duration
	sent      int
	succeeded int
	failed    int
	failures  []string
	perTarget map[string]int
	// leaderless counts the successes served while the target knew no leader.
	leaderless int
	p99        time.Duration
	max        time.Duration
}

// String formats the report for the test log.
func (r endpointLoadReport) String() string {
	return fmt.Sprintf("%d requests in %s (%.1f/s) to %v: %d succeeded (%d of them "+
		"while the node knew no leader), %d failed; latency p99 %s, max %s", r.sent,
		r.duration.Round(time.Millisecond), float64(r.sent)/r.duration.Seconds(),
		r.perTarget, r.succeeded, r.leaderless, r.failed, r.p99.Round(time.Millisecond),
		r.max.Round(time.Millisecond))
}

// finish stops the load and returns its report.
func (l *endpointLoad) finish() endpointLoadReport {
	l.halt()
	l.mu.Lock()
	defer l.mu.Unlock()
	r := endpointLoadReport{duration: time.Since(l.started), sent: l.sent,
		succeeded: l.succeeded, failed: l.failed, failures: slices.Clone(l.failures),
		perTarget: l.perTarget, leaderless: l.leaderless, max: l.maxLatency}
	if len(l.latencies) > 0 {
		sorted := slices.Sorted(slices.Values(l.latencies))
		r.p99 = sorted[len(sorted)*99/100]
	}
	return r
}
