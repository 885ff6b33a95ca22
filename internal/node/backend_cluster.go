package node

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strconv"

	hraft "github.com/hashicorp/raft"

	"github.com/bundlex/bundlex/internal/admin"
	"github.com/bundlex/bundlex/raft"
)

// snapshotFileVersion is the version of the snapshot file format written by
// SnapshotSave: one JSON line of admin.SnapshotMeta, then the state document.
const snapshotFileVersion = 1

func (b *backend) ClusterMembers(context.Context) ([]admin.ClusterMember, error) {
	out := []admin.ClusterMember{}
	if b.n.cluster == nil {
		return out, nil
	}
	for _, m := range b.n.cluster.Members() {
		member := admin.ClusterMember{
			Name:           m.Name,
			GossipAddr:     m.GossipAddr,
			Status:         string(m.Status),
			RaftAddr:       m.RaftAddr,
			Suffrage:       m.Suffrage,
			LastIndex:      m.LastIndex,
			RaftProbeError: m.RaftProbeError,
		}
		if !m.RaftProbeFailingSince.IsZero() {
			since := m.RaftProbeFailingSince.UTC()
			member.RaftProbeFailingSince = &since
		}
		out = append(out, member)
	}
	return out, nil
}

func (b *backend) ClusterRaft(context.Context) (admin.RaftStatus, error) {
	r := b.n.store.Raft()
	leaderAddr, leaderID := r.LeaderWithID()
	stats := r.Stats()
	st := admin.RaftStatus{
		Node:         b.n.cfg.NodeName,
		State:        r.State().String(),
		LeaderID:     string(leaderID),
		LeaderAddr:   string(leaderAddr),
		Term:         parseStat(stats["term"]),
		LastIndex:    r.LastIndex(),
		CommitIndex:  r.CommitIndex(),
		AppliedIndex: b.n.store.AppliedIndex(),
		LastContact:  r.LastContact(),
		Servers:      []admin.RaftServer{},
	}
	future := r.GetConfiguration()
	if err := future.Error(); err != nil {
		return st, fmt.Errorf("node: read the Raft configuration: %w", err)
	}
	for _, s := range future.Configuration().Servers {
		st.Servers = append(st.Servers, admin.RaftServer{
			ID:       string(s.ID),
			Address:  string(s.Address),
			Suffrage: suffrageName(s.Suffrage),
			Leader:   s.ID == leaderID,
		})
	}
	return st, nil
}

func parseStat(value string) uint64 {
	n, _ := strconv.ParseUint(value, 10, 64)
	return n
}

func suffrageName(s hraft.ServerSuffrage) string {
	switch s {
	case hraft.Voter:
		return "voter"
	case hraft.Nonvoter:
		return "nonvoter"
	}
	return "staging"
}

func (b *backend) ClusterLeave(ctx context.Context) error {
	if b.n.cluster == nil {
		return invalidArg("this node runs no cluster membership")
	}
	if err := b.n.cluster.Leave(ctx); err != nil {
		return admin.Errorf(admin.CodeConflict, "%v", err)
	}
	b.n.log.Info("node left the cluster by operator request; stopping")
	b.n.leftOnce.Do(func() { close(b.n.left) })
	return nil
}

func (b *backend) ClusterRemove(ctx context.Context, req admin.RemoveServerRequest) error {
	if req.Node == "" {
		return invalidArg("node is missing: name the server to remove")
	}
	if b.n.cluster == nil {
		return invalidArg("this node runs no cluster membership")
	}
	if err := b.n.cluster.RemoveServer(ctx, req.Node); err != nil {
		return storeError(err)
	}
	b.n.log.Info("server removed by operator", "removed", req.Node)
	return nil
}

// SnapshotSave writes the leader's whole state with a checksum.
func (b *backend) SnapshotSave(_ context.Context, w io.Writer) error {
	if err := b.n.confirmLeadership(); err != nil {
		return admin.Errorf(admin.CodeNotLeader, "snapshot save needs the leader: %v", err)
	}
	saved, err := b.n.store.SaveState()
	if err != nil {
		return err
	}
	sum := sha256.Sum256(saved.Data)
	meta := admin.SnapshotMeta{
		Version:     snapshotFileVersion,
		TrustDomain: b.n.td.Name(),
		ID:          fmt.Sprintf("bundlex-%s-%d", b.n.cfg.NodeName, saved.Index),
		Index:       saved.Index,
		Size:        int64(len(saved.Data)),
		SHA256:      hex.EncodeToString(sum[:]),
	}
	line, err := json.Marshal(meta)
	if err != nil {
		return err
	}
	if _, err := w.Write(append(line, '\n')); err != nil {
		return err
	}
	_, err = w.Write(saved.Data)
	b.n.log.Info("snapshot saved by operator", "index", saved.Index, "bytes", meta.Size)
	return err
}

// SnapshotRestore checks a snapshot file and installs it on the whole cluster.
func (b *backend) SnapshotRestore(_ context.Context, r io.Reader) error {
	reader := bufio.NewReader(r)
	line, err := reader.ReadBytes('\n')
	if err != nil {
		return invalidArg("snapshot file has no header line: %v", err)
	}
	var meta admin.SnapshotMeta
	if err := json.Unmarshal(line, &meta); err != nil {
		return invalidArg("snapshot header is not JSON: %v; is this a bundlex snapshot file?", err)
	}
	if meta.Version != snapshotFileVersion {
		return invalidArg("snapshot file version %d is not supported (this node reads %d)",
			meta.Version, snapshotFileVersion)
	}
	data, err := io.ReadAll(io.LimitReader(reader, meta.Size+1))
	if err != nil {
		return invalidArg("read snapshot data: %v", err)
	}
	sum := sha256.Sum256(data)
	if int64(len(data)) != meta.Size || hex.EncodeToString(sum[:]) != meta.SHA256 {
		return invalidArg("snapshot data is damaged: %d bytes with SHA-256 %x, the header "+
			"says %d bytes with %s", len(data), sum, meta.Size, meta.SHA256)
	}
	if err := b.n.checkSnapshotTrustDomain(meta, data); err != nil {
		return err
	}
	var published uint64
	if rec, ok := b.n.store.LocalBundle(); ok {
		published = rec.Sequence
	}
	if err := b.n.store.RestoreState(data, b.n.cfg.Raft.ApplyTimeout); err != nil {
		return storeError(err)
	}
	b.n.log.Warn("snapshot restored by operator", "index", meta.Index, "id", meta.ID)
	return b.n.keepSequenceAbove(context.Background(), published)
}

// checkSnapshotTrustDomain rejects a snapshot of another trust domain, whose local
// bundle would otherwise be published as this trust domain's.
func (n *Node) checkSnapshotTrustDomain(meta admin.SnapshotMeta, data []byte) error {
	var state struct {
		Local *struct {
			TrustDomain string `json:"trust_domain"`
		} `json:"local"`
	}
	if err := json.Unmarshal(data, &state); err != nil {
		return invalidArg("snapshot data is not a bundlex state: %v", err)
	}
	stateTD := meta.TrustDomain
	if state.Local != nil {
		stateTD = state.Local.TrustDomain
	}
	if meta.TrustDomain != n.td.Name() || stateTD != n.td.Name() {
		return invalidArg("the snapshot belongs to trust domain %q, not to this cluster's "+
			"trust domain %s; restore it on a cluster of %q", stateTD, n.td.Name(), stateTD)
	}
	return nil
}

// keepSequenceAbove republishes the restored local bundle with a sequence above
// the one peers last fetched, because peers reject a lower spiffe_sequence
// (SPIFFE Federation 4.2).
func (n *Node) keepSequenceAbove(ctx context.Context, published uint64) error {
	rec, ok := n.store.LocalBundle()
	if !ok || rec.Sequence > published {
		return nil
	}
	b, err := parseRecord(rec)
	if err != nil {
		return err
	}
	b.Sequence, b.HasSequence = published+1, true
	next, err := newRecord(b, raft.SourceLocal, n.now())
	if err != nil {
		return err
	}
	err = n.store.Apply(ctx, raft.PutLocalBundle{Record: next, PrevSequence: rec.Sequence})
	if err != nil {
		return storeError(err)
	}
	n.log.Warn("republished the restored local bundle above the published sequence",
		"restored_sequence", rec.Sequence, "sequence", next.Sequence)
	return nil
}
