package e2e

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/stretchr/testify/require"

	"github.com/bundlex/bundlex/internal/admin"
)

// Settings of the write history.
const (
	// historyWriteInterval is the pause between two writes of one writer. With
	// one writer per node of a three-node cluster, that is about 10 writes per
	// second while every write succeeds quickly.
	historyWriteInterval = 300 * time.Millisecond
	// historyRelationshipEvery makes every fourth write of a writer update the
	// writer's relationship instead of setting a new bundle.
	historyRelationshipEvery = 4
	// historyURLPrefix starts the endpoint URL of every history relationship.
	// Nothing listens on port 9 of a container's loopback, so the leader's
	// fetches fail at once and write little status.
	historyURLPrefix = "https://127.0.0.1:9/w-"
	// historyCheckTimeout bounds the wait for the nodes to converge at the end.
	historyCheckTimeout = 2 * time.Minute
	// historyMaxWrite is the longest a write may take to succeed or fail. A
	// follower waits up to 5s for a leader, or dials it for up to 5s, and the
	// leader waits up to raft.apply_timeout (10s by default) for the commit. A
	// longer write hung somewhere; clusterWriteTimeout is longer, so that such a
	// write is measured rather than cut short at the bound.
	historyMaxWrite = 16 * time.Second
)

// historyOp is one write of a history. Its fields other than completed, acked
// and err are set before the write is sent.
type historyOp struct {
	num  int64
	node string
	// trustDomain names the bundle that the write sets, or the relationship
	// whose URL it changes.
	trustDomain string
	// url is the endpoint URL that a relationship update sets, empty for a bundle.
	url       string
	bundle    *spiffebundle.Bundle
	invoked   time.Time
	completed time.Time
	acked     bool
	err       error
}

// clusterHistory runs one writer per node that sends numbered writes through that
// node, and records which ones the cluster acknowledged. At the end, every node
// must contain every acknowledged write, possibly some failed ones, and nothing
// else. A failed write may still have been applied, because the leader can
// commit an entry after the client gave up on it.
type clusterHistory struct {
	t       *testing.T
	cluster *dockerCluster
	sampler *sequenceSampler
	counter atomic.Int64
	stop    chan struct{}
	halted  sync.Once
	writers sync.WaitGroup

	mu        sync.Mutex
	ops       map[int64]*historyOp
	rotations []historyRotation
}

// historyRelationship is the relationship that the writer of n updates, so that
// the updates of one relationship come from one sequential writer.
func historyRelationship(n *dockerNode) string { return "rel-" + n.alias + ".test" }

// startHistory creates one relationship per node and starts the writers and a
// sampler of the sequences of the local bundle and of the tracked trust domains.
func startHistory(t *testing.T, c *dockerCluster, tracked ...string) *clusterHistory {
	t.Helper()
	h := &clusterHistory{t: t, cluster: c, stop: make(chan struct{}),
		ops: map[int64]*historyOp{}}
	leader := c.leader()
	for _, n := range c.nodes {
		require.NoError(t, leader.createWebRelationship(historyRelationship(n),
			historyURLPrefix+"0"))
	}
	h.sampler = startSequenceSampler(t, c.nodes, tracked...)
	for _, n := range c.nodes {
		h.writers.Go(func() { h.writeLoop(n) })
	}
	h.writers.Go(h.rotateLoop)
	t.Cleanup(h.halt)
	return h
}

func (h *clusterHistory) writeLoop(n *dockerNode) {
	ticker := time.NewTicker(historyWriteInterval)
	defer ticker.Stop()
	for k := 1; ; k++ {
		select {
		case <-h.stop:
			return
		case <-ticker.C:
		}
		h.write(n, k%historyRelationshipEvery == 0)
	}
}

// write sends the next numbered write through n: a relationship update when
// relationship is set, else a new bundle. The attempt is recorded before it is
// sent, so that a write applied by a node that then died still counts as
// attempted.
func (h *clusterHistory) write(n *dockerNode, relationship bool) *historyOp {
	op := &historyOp{num: h.counter.Add(1), node: n.alias}
	var err error
	if relationship {
		op.trustDomain, op.url = historyRelationship(n), historyURLPrefix+fmt.Sprint(op.num)
	} else {
		op.trustDomain = numberedTrustDomain(op.num)
		// A key generation failure leaves op.bundle nil: the write is recorded as
		// failed and never sent.
		op.bundle, err = numberedBundle(op.num)
	}
	op.invoked = time.Now()
	h.mu.Lock()
	h.ops[op.num] = op
	h.mu.Unlock()

	switch {
	case err != nil:
	case relationship:
		err = n.updateRelationshipURL(op.trustDomain, op.url)
	default:
		ctx, cancel := context.WithTimeout(context.Background(), clusterWriteTimeout)
		err = n.setBundle(ctx, op.bundle)
		cancel()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	op.completed, op.acked, op.err = time.Now(), err == nil, err
	return op
}

// acked counts the acknowledged writes sent through n from from to to.
func (h *clusterHistory) acked(n *dockerNode, from, to time.Time) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	count := 0
	for _, op := range h.ops {
		if op.node == n.alias && op.acked && !op.invoked.Before(from) &&
			!op.invoked.After(to) {
			count++
		}
	}
	return count
}

// waitForAcks waits until the writer of each node in nodes has had a write
// acknowledged that it sent after since, and returns how long after since the
// last of them was acknowledged.
func (h *clusterHistory) waitForAcks(since time.Time, timeout time.Duration,
	nodes ...*dockerNode) time.Duration {
	h.t.Helper()
	waitFor(h.t, timeout, "acknowledged writes through every reachable node", func() error {
		for _, n := range nodes {
			if h.acked(n, since, time.Now()) == 0 {
				return fmt.Errorf("no write through %s acknowledged yet", n.alias)
			}
		}
		return nil
	})
	return time.Since(since)
}

// stopWriters stops the writers and waits for the writes in flight. It is
// idempotent.
func (h *clusterHistory) stopWriters() {
	h.halted.Do(func() { close(h.stop) })
	h.writers.Wait()
}

// halt stops the writers and the sampler. It is idempotent.
func (h *clusterHistory) halt() {
	h.stopWriters()
	h.sampler.halt()
}

// check stops the load, waits until every node stores the same state, and checks
// every node's bundles, relationships and sampled sequences against the history.
func (h *clusterHistory) check() {
	h.t.Helper()
	h.stopWriters()
	h.cluster.requireConverged(historyCheckTimeout)
	h.mu.Lock()
	defer h.mu.Unlock()
	var problems []string
	for _, num := range slices.Sorted(maps.Keys(h.ops)) {
		op := h.ops[num]
		if took := op.completed.Sub(op.invoked); took > historyMaxWrite {
			problems = append(problems, fmt.Sprintf("write %d through %s took %s, more "+
				"than %s (error: %v)", num, op.node, took.Round(time.Millisecond),
				historyMaxWrite, op.err))
		}
	}
	for _, n := range h.cluster.nodes {
		bundles, rels, err := n.bundlesAndRelationships()
		require.NoError(h.t, err)
		problems = append(problems, h.checkBundles(n, bundles)...)
		problems = append(problems, h.checkRelationships(n, rels)...)
		problems = append(problems, h.checkRotations(n)...)
	}
	h.t.Log(h.summary())
	h.t.Log(h.rotationSummary())
	require.Empty(h.t, problems, "the nodes' state does not match the history")
	h.sampler.requireMonotonic(h.t)
}

// checkBundles returns every difference between the history's bundle writes and
// the bundles that n stores.
func (h *clusterHistory) checkBundles(n *dockerNode, bundles []admin.Bundle) []string {
	var problems []string
	seen := map[string]bool{}
	for _, b := range bundles {
		if seen[b.TrustDomain] {
			problems = append(problems, fmt.Sprintf("%s lists %s twice", n.alias,
				b.TrustDomain))
		}
		seen[b.TrustDomain] = true
		num, ok := parseNumberedTrustDomain(b.TrustDomain)
		if !ok {
			continue
		}
		op := h.ops[num]
		if op == nil || op.bundle == nil {
			problems = append(problems, fmt.Sprintf("%s stores %s, which no client wrote",
				n.alias, b.TrustDomain))
			continue
		}
		stored, err := spiffebundle.Parse(spiffeid.RequireTrustDomainFromString(
			b.TrustDomain), b.Document)
		if err != nil || !op.bundle.Equal(stored) {
			problems = append(problems, fmt.Sprintf("%s stores for %s a document other "+
				"than write %d sent (parse error %v)", n.alias, b.TrustDomain, num, err))
		}
	}
	for _, num := range slices.Sorted(maps.Keys(h.ops)) {
		op := h.ops[num]
		if op.acked && op.bundle != nil && !seen[op.trustDomain] {
			problems = append(problems, fmt.Sprintf("%s lost acknowledged write %d (%s "+
				"through %s at %s)", n.alias, num, op.trustDomain, op.node,
				op.completed.Format(time.StampMilli)))
		}
	}
	return problems
}

// checkRelationships checks the URL of each history relationship on n. It must
// come from the last acknowledged update of that relationship or from a failed
// update, which may have been applied after the client gave up. An
// acknowledged update that a later acknowledged one replaced must be gone.
func (h *clusterHistory) checkRelationships(n *dockerNode, rels []admin.Relationship) []string {
	var problems []string
	urls := map[string]string{}
	for _, rel := range rels {
		if _, dup := urls[rel.TrustDomain]; dup {
			problems = append(problems, fmt.Sprintf("%s lists relationship %s twice",
				n.alias, rel.TrustDomain))
		}
		urls[rel.TrustDomain] = rel.BundleEndpointURL
	}
	for _, writer := range h.cluster.nodes {
		name := historyRelationship(writer)
		url, ok := urls[name]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s lost relationship %s", n.alias, name))
			continue
		}
		var lastAcked int64
		for num, op := range h.ops {
			if op.trustDomain == name && op.acked {
				lastAcked = max(lastAcked, num)
			}
		}
		num, err := strconv.ParseInt(strings.TrimPrefix(url, historyURLPrefix), 10, 64)
		op := h.ops[num]
		switch {
		case err != nil || (num != 0 && (op == nil || op.trustDomain != name)):
			problems = append(problems, fmt.Sprintf("%s stores URL %s for %s, which no "+
				"client wrote", n.alias, url, name))
		case num == lastAcked:
		case num == 0 || op.acked:
			problems = append(problems, fmt.Sprintf("%s stores URL %s for %s, but write "+
				"%d set it later and was acknowledged", n.alias, url, name, lastAcked))
		case num < lastAcked:
			h.t.Logf("%s stores for %s the URL of failed write %d, older than "+
				"acknowledged write %d: the failed write was applied late (error: %v)",
				n.alias, name, num, lastAcked, op.err)
		}
	}
	return problems
}

// parseNumberedTrustDomain returns n for a trust domain w-<n>.test.
func parseNumberedTrustDomain(td string) (int64, bool) {
	rest, ok := strings.CutPrefix(td, "w-")
	if !ok {
		return 0, false
	}
	digits, ok := strings.CutSuffix(rest, ".test")
	if !ok {
		return 0, false
	}
	num, err := strconv.ParseInt(digits, 10, 64)
	return num, err == nil
}

// summary counts the writes per node and outcome and quotes each distinct error
// once. The caller holds h.mu.
func (h *clusterHistory) summary() string {
	var b strings.Builder
	attempted, acked := map[string]int{}, map[string]int{}
	errorCounts := map[string]int{}
	var maxAck, maxFailed time.Duration
	for _, op := range h.ops {
		attempted[op.node]++
		if op.acked {
			acked[op.node]++
			maxAck = max(maxAck, op.completed.Sub(op.invoked))
			continue
		}
		maxFailed = max(maxFailed, op.completed.Sub(op.invoked))
		msg := historyErrorKind(op.err)
		for _, n := range h.cluster.nodes {
			msg = strings.ReplaceAll(msg, n.socket, "<"+n.alias+" admin socket>")
		}
		errorCounts[msg]++
	}
	fmt.Fprintf(&b, "history: %d writes attempted %v, acknowledged %v; slowest "+
		"acknowledged write %s, slowest failed write %s", len(h.ops), attempted, acked,
		maxAck.Round(time.Millisecond), maxFailed.Round(time.Millisecond))
	for _, msg := range slices.Sorted(maps.Keys(errorCounts)) {
		fmt.Fprintf(&b, "\n  %d failed: %s", errorCounts[msg], msg)
	}
	return b.String()
}

// historyErrorKind shortens a write error for the summary: an admin error
// becomes its status, code and message.
func historyErrorKind(err error) string {
	var apiErr *admin.APIError
	if errors.As(err, &apiErr) {
		return fmt.Sprintf("HTTP %d %s: %s", apiErr.Status, apiErr.Code, apiErr.Message)
	}
	return err.Error()
}
