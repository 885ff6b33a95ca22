package e2e

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/stretchr/testify/require"

	"github.com/bundlex/bundlex/internal/admin"
)

// sequenceSampleInterval is how often the sampler reads each node's sequences.
const sequenceSampleInterval = 250 * time.Millisecond

// sequenceSampler reads on each node, every sequenceSampleInterval, the
// spiffe_sequence of the local bundle and of the stored bundles of the tracked
// trust domains, and records every decrease. SPIFFE Trust Domain and Bundle
// 4.1.1: the sequence only ever grows, and bundlex applies that to what each
// node holds, so a decrease on one node is a rollback, even across restarts and
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
// local bundle sequence, so that the sampler sees sequences move during faults.
const historyRotateInterval = 3 * time.Second

// historyRotation is one `authority rotate` of a history.
type historyRotation struct {
	node    string
	invoked time.Time
	acked   bool
	err     error
	// bundle is the local bundle that an acknowledged rotation returned.
	bundle admin.Bundle
}

func (h *clusterHistory) rotateLoop() {
	ticker := time.NewTicker(historyRotateInterval)
	defer ticker.Stop()
	for i := 0; ; i++ {
		n := h.cluster.nodes[i%len(h.cluster.nodes)]
		r := historyRotation{node: n.alias, invoked: time.Now()}
		ctx, cancel := context.WithTimeout(context.Background(), clusterWriteTimeout)
		r.bundle, r.err = n.admin.RotateAuthority(ctx)
		cancel()
		r.acked = r.err == nil
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

// checkRotations checks that n's local bundle contains every X.509 authority
// that an acknowledged rotation published, at a sequence no lower than the
// rotation returned. No authority expires during a test, so none may be gone.
// The caller holds h.mu.
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
		if !r.acked {
			continue
		}
		if local.Sequence < r.bundle.Sequence {
			problems = append(problems, fmt.Sprintf("%s serves local sequence %d, lower "+
				"than %d that a rotation through %s returned", n.alias, local.Sequence,
				r.bundle.Sequence, r.node))
		}
		published, err := spiffebundle.Parse(td, r.bundle.Document)
		if err != nil {
			problems = append(problems, fmt.Sprintf("rotation through %s returned an "+
				"invalid bundle: %v", r.node, err))
			continue
		}
		for _, cert := range published.X509Authorities() {
			if !final.HasX509Authority(cert) {
				problems = append(problems, fmt.Sprintf("%s lost the X.509 authority %q "+
					"that sequence %d published", n.alias, cert.Subject, r.bundle.Sequence))
			}
		}
	}
	return problems
}

// rotationSummary counts the rotations by outcome and quotes each error once.
// The caller holds h.mu.
func (h *clusterHistory) rotationSummary() string {
	acked := 0
	var failures []string
	for _, r := range h.rotations {
		if r.acked {
			acked++
		} else {
			failures = append(failures, fmt.Sprintf("%s: %v", r.node, r.err))
		}
	}
	return fmt.Sprintf("rotations: %d attempted, %d acknowledged; failures: %v",
		len(h.rotations), acked, failures)
}
