package e2e

import (
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
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
// bundle endpoints of its targets in turn, and checks each response: status
// 200, Content-Type application/json, a body that parses as a SPIFFE bundle,
// and a spiffe_sequence that never goes down on one target.
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
	sequences  map[string]uint64
	perTarget  map[string]int
	maxLatency time.Duration
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
		sequences: map[string]uint64{},
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
			l.record(target, 0, 0, fmt.Errorf("%d requests still in flight", cap(l.slots)))
			continue
		}
		inFlight.Go(func() {
			defer func() { <-l.slots }()
			start := time.Now()
			seq, err := l.fetch(target)
			l.record(target, time.Since(start), seq, err)
		})
	}
}

// fetch sends one GET to target's endpoint and returns the served sequence.
func (l *endpointLoad) fetch(target *dockerNode) (uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), endpointLoadTimeout)
	defer cancel()
	url := containerURL(target.container, dockerEndpointPort, "/")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := l.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, fmt.Errorf("read the body from %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s returned %d: %s", url, resp.StatusCode, body)
	}
	mediaType, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || mediaType != "application/json" {
		return 0, fmt.Errorf("GET %s returned Content-Type %q, not application/json", url,
			resp.Header.Get("Content-Type"))
	}
	b, err := spiffebundle.Parse(l.td, body)
	if err != nil {
		return 0, fmt.Errorf("GET %s returned no SPIFFE bundle: %w", url, err)
	}
	seq, ok := b.SequenceNumber()
	if !ok {
		return 0, fmt.Errorf("GET %s returned a bundle without spiffe_sequence", url)
	}
	l.trust.update(b, seq)
	return seq, nil
}

// latestBundle authenticates the endpoints with the newest bundle they served, as
// a federation peer does (SPIFFE Federation 5.2.2.4: after the first fetch, the
// latest fetched bundle authenticates the endpoint), so that the endpoints may
// switch to an SVID from a rotated CA.
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

// record counts one request. seq is the served sequence of a success.
func (l *endpointLoad) record(target *dockerNode, latency time.Duration, seq uint64,
	err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sent++
	l.perTarget[target.alias]++
	if err == nil && seq < l.sequences[target.alias] {
		// SPIFFE Trust Domain and Bundle 4.1.1: spiffe_sequence only grows.
		err = fmt.Errorf("%s served sequence %d after %d", target.alias, seq,
			l.sequences[target.alias])
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
	l.sequences[target.alias] = seq
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
	p99       time.Duration
	max       time.Duration
}

// String formats the report for the test log.
func (r endpointLoadReport) String() string {
	return fmt.Sprintf("%d requests in %s (%.1f/s) to %v: %d succeeded, %d failed; "+
		"latency p99 %s, max %s", r.sent, r.duration.Round(time.Millisecond),
		float64(r.sent)/r.duration.Seconds(), r.perTarget, r.succeeded, r.failed,
		r.p99.Round(time.Millisecond), r.max.Round(time.Millisecond))
}

// finish stops the load and returns its report.
func (l *endpointLoad) finish() endpointLoadReport {
	l.halt()
	l.mu.Lock()
	defer l.mu.Unlock()
	r := endpointLoadReport{duration: time.Since(l.started), sent: l.sent,
		succeeded: l.succeeded, failed: l.failed, failures: slices.Clone(l.failures),
		perTarget: l.perTarget, max: l.maxLatency}
	if len(l.latencies) > 0 {
		sorted := slices.Sorted(slices.Values(l.latencies))
		r.p99 = sorted[len(sorted)*99/100]
	}
	return r
}
