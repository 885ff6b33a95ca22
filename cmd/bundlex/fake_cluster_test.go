package main

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/bundlex/bundlex/internal/admin"
)

func (n *fakeNode) ClusterMembers(context.Context) ([]admin.ClusterMember, error) {
	failingSince := fakeNow.Add(-time.Minute)
	return []admin.ClusterMember{{Name: "node-1", GossipAddr: "10.0.0.1:8301", Status: "alive",
		RaftAddr: "10.0.0.1:8300", Suffrage: "voter", LastIndex: 42},
		{Name: "node-4", GossipAddr: "10.0.0.4:8301", Status: "alive",
			RaftAddr: "10.0.0.4:8300", RaftProbeError: "clustertls: TLS handshake with " +
				"Raft peer 10.0.0.4:8300 failed: x509: certificate signed by unknown authority",
			RaftProbeFailingSince: &failingSince}}, nil
}

func (n *fakeNode) ClusterRaft(context.Context) (admin.RaftStatus, error) {
	return admin.RaftStatus{Node: "node-1", State: "Leader", LeaderID: "node-1", Term: 3,
		LastIndex: 42, CommitIndex: 42, AppliedIndex: 42, Servers: []admin.RaftServer{
			{ID: "node-1", Address: "10.0.0.1:8300", Suffrage: "voter", Leader: true}}}, nil
}

func (n *fakeNode) ClusterLeave(context.Context) error { return nil }

func (n *fakeNode) ClusterRemove(_ context.Context, req admin.RemoveServerRequest) error {
	if req.Node != "node-3" {
		return admin.Errorf(admin.CodeNotFound, "server %s is not in the Raft configuration", req.Node)
	}
	return nil
}

func (n *fakeNode) SnapshotSave(_ context.Context, w io.Writer) error {
	_, err := w.Write([]byte("{\"version\":1}\nstate"))
	return err
}

func (n *fakeNode) SnapshotRestore(_ context.Context, r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if len(data) == 0 {
		return errors.New("empty snapshot")
	}
	return nil
}
