package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math"
	"math/big"
	"net/url"
	"slices"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"

	"github.com/bundlex/bundlex/internal/admin"
)

const (
	// pushTrustDomain is the federated trust domain whose bundle each change
	// replaces.
	pushTrustDomain = "push.bench.test"
	// pushTimeout bounds the wait for one change to reach every watcher.
	pushTimeout = 30 * time.Second
)

// pushResult is the latency of every change for one number of watchers.
type pushResult struct {
	watchers  int
	latencies []time.Duration
}

// timedSet is one update of a watcher and the time it arrived.
type timedSet struct {
	at  time.Time
	set *x509bundle.Set
}

// pushWatcher passes every go-spiffe WatchX509Bundles update to a channel.
type pushWatcher struct{ updates chan timedSet }

func (w pushWatcher) OnX509BundlesUpdate(set *x509bundle.Set) {
	w.updates <- timedSet{at: time.Now(), set: set}
}

func (w pushWatcher) OnX509BundlesWatchError(error) {}

// awaitCA returns the time at which w received a set whose bundle of
// pushTrustDomain holds ca.
func (w pushWatcher) awaitCA(ctx context.Context, ca *x509.Certificate) (time.Time, error) {
	td := spiffeid.RequireTrustDomainFromString(pushTrustDomain)
	deadline := time.After(pushTimeout)
	for {
		select {
		case update := <-w.updates:
			if b, ok := update.set.Get(td); ok && b.HasX509Authority(ca) {
				return update.at, nil
			}
		case <-deadline:
			return time.Time{}, fmt.Errorf("verifybench: a Workload API watcher did not "+
				"receive the new bundle of %s within %s", pushTrustDomain, pushTimeout)
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		}
	}
}

// measurePush replaces the bundle of pushTrustDomain s.pushChanges times for
// each number of watchers in s.pushWatchers. A change's latency runs from the
// start of the admin request that stores the bundle, through the Raft commit,
// to the moment every watcher has received and parsed the new bundle set.
func measurePush(ctx context.Context, s settings, n *node) ([]pushResult, error) {
	cas := make([]*x509.Certificate, s.pushChanges+1)
	for i := range cas {
		ca, err := newCA()
		if err != nil {
			return nil, err
		}
		cas[i] = ca
	}
	// The first change creates the trust domain's entry, so that every watcher
	// starts from a set that has it.
	if err := setPushBundle(ctx, n.admin, cas[0]); err != nil {
		return nil, err
	}
	var results []pushResult
	for _, count := range s.pushWatchers {
		logProgress("measuring Workload API push latency", "watchers", count,
			"changes", s.pushChanges)
		result, err := measurePushWith(ctx, n, count, cas[1:])
		if err != nil {
			return nil, err
		}
		results = append(results, result)
	}
	return results, nil
}

func measurePushWith(ctx context.Context, n *node, count int, cas []*x509.Certificate) (
	pushResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	watchers := make([]pushWatcher, count)
	for i := range watchers {
		watchers[i] = pushWatcher{updates: make(chan timedSet, 16)}
		go func() {
			_ = workloadapi.WatchX509Bundles(ctx, watchers[i],
				workloadapi.WithAddr("unix://"+n.workloadSocket))
		}()
		select {
		case <-watchers[i].updates: // the first message
		case <-time.After(pushTimeout):
			return pushResult{}, fmt.Errorf("verifybench: a Workload API watcher on %s "+
				"received no bundles within %s", n.workloadSocket, pushTimeout)
		}
	}
	result := pushResult{watchers: count}
	for _, ca := range cas {
		start := time.Now()
		if err := setPushBundle(ctx, n.admin, ca); err != nil {
			return pushResult{}, err
		}
		var last time.Time
		for _, w := range watchers {
			at, err := w.awaitCA(ctx, ca)
			if err != nil {
				return pushResult{}, err
			}
			if at.After(last) {
				last = at
			}
		}
		result.latencies = append(result.latencies, last.Sub(start))
	}
	return result, nil
}

func setPushBundle(ctx context.Context, client *admin.Client, ca *x509.Certificate) error {
	data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw})
	_, err := client.SetBundle(ctx, pushTrustDomain,
		admin.SetBundleRequest{Format: "pem", Data: string(data)})
	if err != nil {
		return fmt.Errorf("verifybench: set the bundle of %s: %w", pushTrustDomain, err)
	}
	return nil
}

// newCA returns a self-signed CA certificate of pushTrustDomain.
func newCA() (*x509.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	template := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "verifybench push CA " + serial.String()},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		BasicConstraintsValid: true,
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		URIs:                  []*url.URL{{Scheme: "spiffe", Host: pushTrustDomain}},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("verifybench: create a CA certificate: %w", err)
	}
	return x509.ParseCertificate(der)
}

// percentile returns the q-th quantile (0 to 1) of latencies, nearest rank.
func percentile(latencies []time.Duration, q float64) time.Duration {
	if len(latencies) == 0 {
		return 0
	}
	sorted := slices.Sorted(slices.Values(latencies))
	rank := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}
