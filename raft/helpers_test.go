package raft

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/bundlex/bundlex/internal/testutil"
)

// waitLimit bounds every wait in these tests. It is generous because elections and
// fsyncs slow down on a loaded machine; a passing run returns well before it.
const waitLimit = 30 * time.Second

// testLogger collects the node's logs and prints them only when the test fails.
// BUNDLEX_TEST_LOG=debug raises the level from info to debug.
func testLogger(t *testing.T, name string) hclog.Logger {
	level := hclog.Info
	if os.Getenv("BUNDLEX_TEST_LOG") == "debug" {
		level = hclog.Debug
	}
	output := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs of node %s:\n%s", name, output.String())
		}
	})
	return hclog.New(&hclog.LoggerOptions{Name: name, Level: level, Output: output})
}

// syncBuffer is a bytes.Buffer that Raft's goroutines can write concurrently.
type syncBuffer = testutil.SyncBuffer

// singleNodeConfig returns a configuration for a node that leads alone. The short
// timeouts are safe because a single voter never loses contact with a quorum.
func singleNodeConfig(t *testing.T, nodeID, dataDir string) Config {
	return Config{
		NodeID:             nodeID,
		DataDir:            dataDir,
		BindAddr:           "127.0.0.1:0",
		Bootstrap:          true,
		Logger:             testLogger(t, nodeID),
		HeartbeatTimeout:   100 * time.Millisecond,
		ElectionTimeout:    100 * time.Millisecond,
		LeaderLeaseTimeout: 50 * time.Millisecond,
	}
}

// openStore opens a store and closes it at the end of the test.
func openStore(t *testing.T, cfg Config) *Store {
	t.Helper()
	s, err := Open(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// openLeader opens a bootstrapped single-node store and waits until it leads.
func openLeader(t *testing.T, cfg Config) *Store {
	t.Helper()
	s := openStore(t, cfg)
	waitForLeadership(t, s)
	return s
}

func waitForLeadership(t *testing.T, s *Store) {
	t.Helper()
	leadership, cancel := s.SubscribeLeadership()
	defer cancel()
	deadline := time.After(waitLimit)
	for {
		select {
		case leader := <-leadership:
			if leader {
				return
			}
		case <-deadline:
			t.Fatalf("node %s did not become leader within %s", s.cfg.NodeID, waitLimit)
		}
	}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	t.Cleanup(cancel)
	return ctx
}

func mustApply(t *testing.T, s *Store, cmd Command) {
	t.Helper()
	require.NoError(t, s.Apply(testContext(t), cmd))
}

// stateView is everything a store returns to readers, for comparing two nodes or
// the state before and after a rejected command.
type stateView struct {
	Local         BundleRecord
	HasLocal      bool
	Federated     []BundleRecord
	Relationships []Relationship
	Statuses      []PeerStatus
}

func viewOf(s *Store) stateView {
	local, ok := s.LocalBundle()
	return stateView{
		Local:         local,
		HasLocal:      ok,
		Federated:     s.FederatedBundles(),
		Relationships: s.Relationships(),
		Statuses:      s.PeerStatuses(),
	}
}

// testTime is a fixed UTC instant, so that records compare equal after a JSON
// round trip through the log or a snapshot.
var testTime = time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.UTC)

func document(td string, sequence uint64) []byte {
	return fmt.Appendf(nil, `{"keys":[],"spiffe_sequence":%d,"td":%q}`, sequence, td)
}

func localRecord(sequence uint64) BundleRecord {
	return BundleRecord{
		TrustDomain: "local.test",
		Document:    document("local.test", sequence),
		Sequence:    sequence,
		HasSequence: true,
		Source:      SourceLocal,
		UpdatedAt:   testTime,
	}
}

func federatedRecord(td string, sequence uint64, source Source) BundleRecord {
	return BundleRecord{
		TrustDomain: td,
		Document:    document(td, sequence),
		Sequence:    sequence,
		HasSequence: true,
		Source:      source,
		UpdatedAt:   testTime.Add(time.Duration(sequence) * time.Minute),
	}
}

func relationship(td string) Relationship {
	return Relationship{
		TrustDomain:       td,
		BundleEndpointURL: "https://" + td + ":8443/",
		Profile:           "https_spiffe",
		EndpointSPIFFEID:  "spiffe://" + td + "/bundle-endpoint",
		CAPEM:             []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"),
		AllowedIDPrefixes: []string{"spiffe://" + td + "/workload"},
		CreatedAt:         testTime,
		UpdatedAt:         testTime,
	}
}

func peerStatus(td string, failures int) PeerStatus {
	return PeerStatus{
		TrustDomain:         td,
		LastAttempt:         testTime.Add(time.Hour),
		LastSuccess:         testTime.Add(time.Hour),
		NextRefresh:         testTime.Add(time.Hour + 5*time.Minute),
		LastError:           fmt.Sprintf("%d failures", failures),
		ConsecutiveFailures: failures,
		X509Keys:            2,
		JWTKeys:             1,
		SkippedKeys:         1,
	}
}

// populate applies one of every kind of record.
func populate(t *testing.T, s *Store) {
	t.Helper()
	mustApply(t, s, PutLocalBundle{Record: localRecord(1)})
	mustApply(t, s, PutLocalBundle{Record: localRecord(2), PrevSequence: 1})
	mustApply(t, s, CreateRelationship{Relationship: relationship("org-a.test")})
	bootstrap := federatedRecord("org-b.test", 1, SourceBootstrap)
	mustApply(t, s, CreateRelationship{Relationship: relationship("org-b.test"),
		Bootstrap: &bootstrap})
	status := peerStatus("org-a.test", 0)
	mustApply(t, s, PutFederatedBundle{Record: federatedRecord("org-a.test", 7, SourceFetched),
		Status: &status})
	mustApply(t, s, PutFederatedBundle{Record: federatedRecord("org-c.test", 3, SourceOperator),
		Override: true})
}
