package e2e

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bundlex/bundlex/internal/admin"
)

// Limits of the fault tests.
const (
	// maxFailover is the longest accepted time from a leader's SIGKILL until a
	// surviving node reports another leader.
	maxFailover = 10 * time.Second
	// faultRecoveryTimeout bounds the wait for writes to succeed again after a
	// fault, and for a restarted node to catch up.
	faultRecoveryTimeout = time.Minute
	// partitionHold is how long the partition lasts after the majority has a
	// leader, long enough for gossip to declare the old leader failed.
	partitionHold = 10 * time.Second
	// maxRejectedWrite bounds how long the old leader takes to reject a write
	// while partitioned: up to 5s waiting for a leader, plus a margin for a write
	// sent while it still believed it led.
	maxRejectedWrite = 15 * time.Second
	// slowShutdown is the stop time beyond which the test logs the node's
	// shutdown: bundlex has no documented limit, and docker stop kills after
	// containerStopGrace.
	slowShutdown = 5 * time.Second
)

func TestDockerClusterLeaderKill(t *testing.T) {
	c := startDockerCluster(t, 3, dockerTrustDomain)
	oldLeader := c.leader()
	survivors := c.others(oldLeader)
	trusted := containerLocalBundle(t, survivors[0].container, c.trustDomain)
	load := startEndpointLoad(t, trusted, survivors...)
	h := startHistory(t, c)
	h.waitForAcks(time.Now(), faultRecoveryTimeout, c.nodes...)

	killedAt := time.Now()
	oldLeader.Kill()
	failover, reporter, newLeader := measureFailover(t, oldLeader, killedAt, survivors)
	t.Logf("leader %s killed: %s reported leader %s %s after the SIGKILL", oldLeader.alias,
		reporter.alias, newLeader, failover.Round(time.Millisecond))
	require.LessOrEqual(t, failover, maxFailover, "failover took longer than %s",
		maxFailover)
	require.Equal(t, newLeader, c.waitForLeader(oldLeader).alias)

	recovered := h.waitForAcks(killedAt, faultRecoveryTimeout, survivors...)
	t.Logf("writes through both survivors acknowledged again %s after the SIGKILL",
		recovered.Round(time.Millisecond))
	for _, n := range survivors {
		op := h.write(n, false)
		require.True(t, op.acked, "write %d through %s after the failover: %v", op.num,
			n.alias, op.err)
	}

	// The killed node rejoins with its data volume and catches up as a follower.
	restartAt := time.Now()
	oldLeader.Start()
	oldLeader.WaitHealthy(dockerReadyTimeout)
	c.waitCaughtUp(oldLeader, faultRecoveryTimeout)
	t.Logf("%s rejoined and caught up %s after docker start", oldLeader.alias,
		time.Since(restartAt).Round(time.Millisecond))
	h.waitForAcks(time.Now(), faultRecoveryTimeout, oldLeader)

	report := load.finish()
	t.Logf("bundle endpoint load on %s and %s: %s", survivors[0].alias, survivors[1].alias,
		report)
	require.Zero(t, report.failed, "failed endpoint requests: %s",
		strings.Join(report.failures, "\n"))
	minimum := int(report.duration.Seconds() * endpointLoadRate * 0.9)
	require.GreaterOrEqual(t, report.sent, minimum, "the load fell below 90%% of %d/s",
		endpointLoadRate)
	h.check()
}

// measureFailover polls the survivors from the moment the old leader was killed
// until one of them reports a leader other than old, and returns the elapsed
// time, that node and the leader it reported.
func measureFailover(t *testing.T, old *dockerNode, killedAt time.Time,
	survivors []*dockerNode) (time.Duration, *dockerNode, string) {
	t.Helper()
	deadline := killedAt.Add(clusterLeaderTimeout)
	for time.Now().Before(deadline) {
		for _, n := range survivors {
			st, err := n.raftStatus()
			if err == nil && st.LeaderID != "" && st.LeaderID != old.alias {
				return time.Since(killedAt), n, st.LeaderID
			}
		}
		time.Sleep(clusterPollInterval)
	}
	t.Fatalf("no survivor reported a new leader within %s of killing %s",
		clusterLeaderTimeout, old.alias)
	return 0, nil, ""
}

func TestDockerClusterPartitionedLeader(t *testing.T) {
	c := startDockerCluster(t, 3, dockerTrustDomain)
	h := startHistory(t, c)
	h.waitForAcks(time.Now(), faultRecoveryTimeout, c.nodes...)
	old := c.leader()
	majority := c.others(old)

	old.Disconnect()
	disconnectedAt := time.Now()
	newLeader := c.waitForLeader(old)
	t.Logf("%s partitioned: the majority elected %s %s later", old.alias, newLeader.alias,
		time.Since(disconnectedAt).Round(time.Millisecond))
	h.waitForAcks(disconnectedAt, faultRecoveryTimeout, majority...)

	// A write sent to the old leader fails within a bounded time, with a reason.
	op := h.write(old, false)
	took := op.completed.Sub(op.invoked)
	t.Logf("write through partitioned %s failed after %s: %v", old.alias,
		took.Round(time.Millisecond), op.err)
	require.False(t, op.acked, "the partitioned old leader acknowledged write %d", op.num)
	var apiErr *admin.APIError
	require.True(t, errors.As(op.err, &apiErr), "error %v is not an admin API error", op.err)
	require.Equal(t, admin.CodeNotLeader, apiErr.Code, "error: %v", op.err)
	require.Contains(t, apiErr.Message, "leader")
	require.LessOrEqual(t, took, maxRejectedWrite)
	st, err := old.raftStatus()
	require.NoError(t, err)
	t.Logf("partitioned %s: state %s, leader %q, term %d", old.alias, st.State, st.LeaderID,
		st.Term)
	require.NotEqual(t, "Leader", st.State, "the partitioned node still calls itself leader")
	requireFreshnessHeaders(t, old, newLeader, majority)

	waitPartitionHold(t, c, old)
	old.Connect()
	reconnectedAt := time.Now()
	require.Zero(t, h.acked(old, disconnectedAt, reconnectedAt),
		"the partitioned node acknowledged writes that no majority had")
	c.waitCaughtUp(old, faultRecoveryTimeout)
	t.Logf("%s caught up %s after reconnecting", old.alias,
		time.Since(reconnectedAt).Round(time.Millisecond))
	h.waitForAcks(reconnectedAt, faultRecoveryTimeout, old)
	h.check()
}

// requireFreshnessHeaders checks the admin API during the partition. The old
// leader still serves its local state, with headers that report no known leader,
// but it rejects a consistent read. A follower in the majority serves a
// consistent read through the new leader.
func requireFreshnessHeaders(t *testing.T, old, newLeader *dockerNode,
	majority []*dockerNode) {
	t.Helper()
	stale, err := old.adminGet("/v1/bundle")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, stale.status, "stale read: %s", stale.body)
	require.Equal(t, "false", stale.header.Get("X-Bundlex-Known-Leader"))
	contact, err := strconv.ParseInt(stale.header.Get("X-Bundlex-Last-Contact"), 10, 64)
	require.NoError(t, err, "X-Bundlex-Last-Contact header")
	require.GreaterOrEqual(t, contact, int64(1000), "ms since the old leader last "+
		"heard from a leader")
	t.Logf("stale read on %s: index %s, last contact %d ms", old.alias,
		stale.header.Get("X-Bundlex-Index"), contact)

	consistent, err := old.adminGet("/v1/bundle?consistent=true")
	require.NoError(t, err)
	t.Logf("consistent read on %s: HTTP %d after %s: %s", old.alias, consistent.status,
		consistent.took.Round(time.Millisecond), consistent.body)
	require.Equal(t, http.StatusServiceUnavailable, consistent.status)
	require.Contains(t, string(consistent.body), admin.CodeNotLeader)
	require.LessOrEqual(t, consistent.took, maxRejectedWrite)

	follower := majority[0]
	if follower == newLeader {
		follower = majority[1]
	}
	forwarded, err := follower.adminGet("/v1/bundle?consistent=true")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, forwarded.status, "consistent read through %s: %s",
		follower.alias, forwarded.body)
	index, err := strconv.ParseUint(forwarded.header.Get("X-Bundlex-Index"), 10, 64)
	require.NoError(t, err, "X-Bundlex-Index header")
	require.Greater(t, index, uint64(0))
}

// waitPartitionHold keeps the partition for partitionHold while checking that
// the majority keeps one leader, and logs what gossip on the majority side
// reports about the partitioned node.
func waitPartitionHold(t *testing.T, c *dockerCluster, old *dockerNode) {
	t.Helper()
	until := time.Now().Add(partitionHold)
	for time.Now().Before(until) {
		c.waitForLeader(old)
		time.Sleep(clusterPollInterval)
	}
	members, err := c.waitForLeader(old).admin.ClusterMembers(t.Context())
	require.NoError(t, err)
	for _, m := range members {
		if m.Name == old.alias {
			t.Logf("after %s of partition, gossip reports %s as %s with suffrage %s",
				partitionHold, m.Name, m.Status, m.Suffrage)
		}
	}
}

func TestDockerClusterRollingRestart(t *testing.T) {
	c := startDockerCluster(t, 3, dockerTrustDomain)
	h := startHistory(t, c)
	h.waitForAcks(time.Now(), faultRecoveryTimeout, c.nodes...)

	for _, n := range c.nodes {
		others := c.others(n)
		wasLeader := c.leader() == n
		start := time.Now()
		n.Stop()
		stopped := time.Since(start)
		c.waitForLeader(n)
		h.waitForAcks(time.Now(), faultRecoveryTimeout, others...)

		exit := exitState(t, n)
		restart := time.Now()
		n.Start()
		ready := n.WaitHealthy(dockerReadyTimeout)
		c.waitCaughtUp(n, faultRecoveryTimeout)
		c.waitForVoters(len(c.nodes))
		h.waitForAcks(time.Now(), faultRecoveryTimeout, n)
		t.Logf("%s (leader before: %t) stopped in %s (%s), ready %s and caught up %s "+
			"after docker start", n.alias, wasLeader, stopped.Round(time.Millisecond), exit,
			ready.Round(time.Millisecond), time.Since(restart).Round(time.Millisecond))
	}
	h.stopWriters()

	// Stop every node, one after the other: the last ones stop without quorum.
	for _, n := range c.nodes {
		state := "unknown"
		if st, err := n.raftStatus(); err == nil {
			state = st.State
		}
		start := time.Now()
		n.Stop()
		stopped := time.Since(start)
		t.Logf("%s (%s) stopped in %s (%s)", n.alias, state, stopped.Round(time.Millisecond),
			exitState(t, n))
		if stopped > slowShutdown {
			t.Logf("NOTE: slow shutdown of %s:\n%s", n.alias, shutdownLog(n))
		}
	}
	start := time.Now()
	mustDocker(t, append([]string{"start"}, containerNames(c.nodes)...)...)
	leader := c.waitForLeader()
	t.Logf("all nodes started: %s leads %s after docker start", leader.alias,
		time.Since(start).Round(time.Millisecond))
	for _, n := range c.nodes {
		n.WaitHealthy(dockerReadyTimeout)
	}
	h.check()
}

// exitState describes how a stopped container ended: exit code 0 after SIGTERM
// is a clean shutdown, 137 means docker stop had to send SIGKILL.
func exitState(t *testing.T, n *dockerNode) string {
	t.Helper()
	return mustDocker(t, "inspect", "--format",
		"{{.State.Status}}, exit code {{.State.ExitCode}}", n.name)
}

// shutdownLog returns the node's log from its last "shutting down" line on,
// without gossip lines.
func shutdownLog(n *dockerNode) string {
	logs := n.Logs()
	if i := strings.LastIndex(logs, `msg="shutting down"`); i >= 0 {
		logs = logs[strings.LastIndex(logs[:i], "\n")+1:]
	}
	var kept []string
	for line := range strings.SplitSeq(logs, "\n") {
		if !strings.Contains(line, "memberlist") {
			kept = append(kept, line)
		}
	}
	return strings.Join(kept, "\n")
}

func containerNames(nodes []*dockerNode) []string {
	names := make([]string, len(nodes))
	for i, n := range nodes {
		names[i] = n.name
	}
	return names
}
