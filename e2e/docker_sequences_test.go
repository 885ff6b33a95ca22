package e2e

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/stretchr/testify/require"

	"github.com/bundlex/bundlex/internal/admin"
)

// sequenceSampleInterval is how often the sampler reads each node's sequences.
const sequenceSampleInterval = 250 * time.Millisecond

// sequenceSampler reads on each node, every sequenceSampleInterval, the
// spiffe_sequence of the local bundle and of the stored bundles of the tracked
// trust domains, and records every decrease. SPIFFE Trust Domain and Bundle
// 4.1.1: the sequence only ever grows, and bundlex applies that to what each
// node stores, so a decrease on one node is a rollback, even across restarts and
// leader changes. Reads that fail, as on a stopped node, are skipped.
type sequenceSampler struct {
	stop   chan struct{}
	halted sync.Once
	wg     sync.WaitGroup

	mu        sync.Mutex
	last      map[string]uint64
	samples   int
	decreases []string
}

func startSequenceSampler(t *testing.T, nodes []*dockerNode,
	tracked ...string) *sequenceSampler {
	s := &sequenceSampler{stop: make(chan struct{}), last: map[string]uint64{}}
	for _, n := range nodes {
		s.wg.Go(func() { s.sampleLoop(n, tracked) })
	}
	t.Cleanup(s.halt)
	return s
}

func (s *sequenceSampler) sampleLoop(n *dockerNode, tracked []string) {
	ticker := time.NewTicker(sequenceSampleInterval)
	defer ticker.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-ticker.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), clusterReadTimeout)
		if b, err := n.admin.LocalBundle(ctx); err == nil {
			s.observe(n.alias, b.TrustDomain, b.Sequence)
		}
		for _, td := range tracked {
			if b, err := n.admin.Bundle(ctx, td); err == nil {
				s.observe(n.alias, td, b.Sequence)
			}
		}
		cancel()
	}
}

func (s *sequenceSampler) observe(node, td string, seq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := node + " " + td
	s.samples++
	if prev, ok := s.last[key]; ok && seq < prev {
		s.decreases = append(s.decreases, fmt.Sprintf("%s held %s at sequence %d, then %d",
			node, td, prev, seq))
	}
	s.last[key] = seq
}

// halt stops sampling and waits for the reads in flight. It is idempotent.
func (s *sequenceSampler) halt() {
	s.halted.Do(func() { close(s.stop) })
	s.wg.Wait()
}

// latest returns the last sequence sampled on node for td, and whether any was.
func (s *sequenceSampler) latest(node, td string) (uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	seq, ok := s.last[node+" "+td]
	return seq, ok
}

// waitSampled waits until the sampler has read td's sequence on every node in
// nodes, so that a fault injected next happens after a first sample.
func (s *sequenceSampler) waitSampled(t *testing.T, td string, nodes ...*dockerNode) {
	t.Helper()
	waitFor(t, clusterLeaderTimeout, "a first sequence sample of "+td, func() error {
		for _, n := range nodes {
			if _, ok := s.latest(n.alias, td); !ok {
				return fmt.Errorf("no sample of %s on %s yet", td, n.alias)
			}
		}
		return nil
	})
}

// requireMonotonic stops sampling and fails the test if any sequence went down.
func (s *sequenceSampler) requireMonotonic(t *testing.T) {
	t.Helper()
	s.halt()
	s.mu.Lock()
	defer s.mu.Unlock()
	var last []string
	for _, key := range slices.Sorted(maps.Keys(s.last)) {
		last = append(last, fmt.Sprintf("%s=%d", key, s.last[key]))
	}
	t.Logf("sequences: %d samples, last %s", s.samples, strings.Join(last, ", "))
	require.Positive(t, s.samples, "no sequence could be read on any node")
	require.Empty(t, s.decreases, "spiffe_sequence went down on a node")
}

// historyRotateInterval is the pause between two authority rotations of a
// history, which go through the nodes in turn. Each rotation publishes a new
// local bundle sequence, so that sequences change during faults.
const historyRotateInterval = 3 * time.Second

// historyRotation is one `authority rotate` of a history, followed by an
// X509-SVID minted on the same node.
type historyRotation struct {
	node  string
	acked bool
	err   error
	// sequence is the local bundle sequence that an acknowledged rotation returned.
	sequence uint64
	// svid is the certificate chain of the X509-SVID minted after the rotation,
	// nil when minting failed.
	svid []*x509.Certificate
}

func (h *clusterHistory) rotateLoop() {
	ticker := time.NewTicker(historyRotateInterval)
	defer ticker.Stop()
	for i := 0; ; i++ {
		n := h.cluster.nodes[i%len(h.cluster.nodes)]
		r := h.rotate(n)
		h.mu.Lock()
		h.rotations = append(h.rotations, r)
		h.mu.Unlock()
		select {
		case <-h.stop:
			return
		case <-ticker.C:
		}
	}
}

// rotate rotates n's keys and then mints an X509-SVID with n's active CA.
func (h *clusterHistory) rotate(n *dockerNode) historyRotation {
	ctx, cancel := context.WithTimeout(context.Background(), clusterWriteTimeout)
	defer cancel()
	r := historyRotation{node: n.alias}
	b, err := n.admin.RotateAuthority(ctx)
	r.acked, r.err, r.sequence = err == nil, err, b.Sequence
	svid, err := n.admin.MintX509SVID(ctx, admin.MintX509SVIDRequest{
		SPIFFEID: "spiffe://" + h.cluster.trustDomain + "/history/" + n.alias})
	if err == nil {
		r.svid, _ = parsePEMCertificates(svid.CertsPEM)
	}
	return r
}

// parsePEMCertificates parses every CERTIFICATE block of data.
func parsePEMCertificates(data string) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := []byte(data)
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return certs, nil
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		certs = append(certs, cert)
	}
}

// checkRotations checks n's local bundle against the rotations: its sequence is
// no lower than any acknowledged rotation returned, and every X509-SVID minted
// during the history still verifies against it. A rotation may withdraw a
// prepared key that never signed anything, but no CA that signed an SVID may
// leave the bundle while that SVID is valid (SPIFFE Federation 4.1). The caller
// holds h.mu.
func (h *clusterHistory) checkRotations(n *dockerNode) []string {
	ctx, cancel := context.WithTimeout(context.Background(), clusterReadTimeout)
	defer cancel()
	local, err := n.admin.LocalBundle(ctx)
	if err != nil {
		return []string{fmt.Sprintf("read the local bundle of %s: %v", n.alias, err)}
	}
	td := spiffeid.RequireTrustDomainFromString(local.TrustDomain)
	final, err := spiffebundle.Parse(td, local.Document)
	if err != nil {
		return []string{fmt.Sprintf("local bundle of %s: %v", n.alias, err)}
	}
	var problems []string
	for _, r := range h.rotations {
		if r.acked && local.Sequence < r.sequence {
			problems = append(problems, fmt.Sprintf("%s serves local sequence %d, lower "+
				"than %d that a rotation through %s returned", n.alias, local.Sequence,
				r.sequence, r.node))
		}
		if r.svid == nil {
			continue
		}
		if _, _, err := x509svid.Verify(r.svid, final); err != nil {
			problems = append(problems, fmt.Sprintf("an X509-SVID that %s minted (authority "+
				"key ID %x) does not verify against the local bundle of %s at sequence "+
				"%d: %v", r.node, r.svid[0].AuthorityKeyId, n.alias, local.Sequence, err))
		}
	}
	return problems
}

// rotationSummary counts the rotations and minted SVIDs and quotes each error.
// The caller holds h.mu.
func (h *clusterHistory) rotationSummary() string {
	acked, minted := 0, 0
	var failures []string
	for _, r := range h.rotations {
		if r.svid != nil {
			minted++
		}
		if r.acked {
			acked++
		} else {
			failures = append(failures, fmt.Sprintf("%s: %v", r.node, r.err))
		}
	}
	return fmt.Sprintf("rotations: %d attempted, %d acknowledged, %d X509-SVIDs minted; "+
		"failures: %v", len(h.rotations), acked, minted, failures)
}
