package raft

import (
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	hraft "github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"
)

func TestUndecodableEntrySkipped(t *testing.T) {
	s := openLeader(t, singleNodeConfig(t, "n1", t.TempDir()))
	populate(t, s)
	before := viewOf(s)

	future := s.Raft().Apply([]byte{entryVersion + 1, byte(kindPutLocalBundle), '{', '}'},
		waitLimit)
	require.NoError(t, future.Error())
	response, ok := future.Response().(error)
	require.True(t, ok, "the FSM must return an error for the entry")
	require.ErrorContains(t, response, fmt.Sprintf("log entry version %d is not supported", entryVersion+1))
	require.Equal(t, future.Index(), s.AppliedIndex())
	require.Equal(t, before, viewOf(s))

	mustApply(t, s, PutLocalBundle{Record: localRecord(3), PrevSequence: 2})
}

func TestRestoreRejectsBadSnapshots(t *testing.T) {
	tests := []struct {
		name     string
		snapshot string
		want     string
	}{
		{"snapshot not JSON", "{", "raft: decode snapshot"},
		{"unknown snapshot version", `{"version":99,"index":4}`,
			"snapshot version 99 is not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			machine := newFSM(testLogger(t, "fsm"))
			err := machine.Restore(io.NopCloser(strings.NewReader(tt.snapshot)))
			require.ErrorContains(t, err, tt.want)
		})
	}
}

func TestRestoreAcceptsNullMaps(t *testing.T) {
	machine := newFSM(testLogger(t, "fsm"))
	snapshot := `{"version":2,"index":9,"federated":null,"relationships":null,"statuses":null}`
	require.NoError(t, machine.Restore(io.NopCloser(strings.NewReader(snapshot))))
	require.Equal(t, uint64(9), machine.appliedIndex())

	entry, err := encodeCommand(CreateRelationship{Relationship: relationship("org-a.test")})
	require.NoError(t, err)
	require.Nil(t, machine.Apply(&hraft.Log{Index: 10, Type: hraft.LogCommand, Data: entry}))
	_, ok := machine.relationship("org-a.test")
	require.True(t, ok)
}

func TestInjectedTransportUsed(t *testing.T) {
	transport, err := hraft.NewTCPTransport("127.0.0.1:0", nil, 2, time.Second, io.Discard)
	require.NoError(t, err)
	cfg := singleNodeConfig(t, "n1", t.TempDir())
	cfg.BindAddr = ""
	cfg.Transport = transport

	s := openLeader(t, cfg)
	require.Equal(t, transport.LocalAddr(), s.Addr())
	mustApply(t, s, PutLocalBundle{Record: localRecord(1)})

	require.NoError(t, s.Close())
	require.True(t, transport.IsShutdown(), "Close must shut the transport down")
	err = s.Apply(testContext(t), PutLocalBundle{Record: localRecord(2), PrevSequence: 1})
	require.ErrorIs(t, err, hraft.ErrRaftShutdown)
	require.ErrorContains(t, err, "open the store again")
}
