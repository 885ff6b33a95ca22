package raft

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestEntryEncodingRoundTrip(t *testing.T) {
	status := peerStatus("org-a.test", 2)
	bootstrap := federatedRecord("org-a.test", 1, SourceBootstrap)
	commands := []Command{
		PutLocalBundle{Record: localRecord(4), PrevSequence: 3},
		CreateRelationship{Relationship: relationship("org-a.test"), Bootstrap: &bootstrap},
		UpdateRelationship{Relationship: relationship("org-a.test")},
		DeleteRelationship{TrustDomain: "org-a.test"},
		PutFederatedBundle{Record: federatedRecord("org-a.test", 9, SourceFetched),
			Status: &status},
		PutFederatedBundle{Record: federatedRecord("org-a.test", 2, SourceOperator),
			Override: true},
		DeleteFederatedBundle{TrustDomain: "org-a.test"},
		PutPeerStatus{Status: status},
	}
	for _, cmd := range commands {
		t.Run(cmd.kind().String(), func(t *testing.T) {
			entry, err := encodeCommand(cmd)
			require.NoError(t, err)
			require.Equal(t, entryVersion, entry[0])
			require.Equal(t, byte(cmd.kind()), entry[1])

			decoded, err := decodeCommand(entry)
			require.NoError(t, err)
			require.Equal(t, cmd, decoded)
		})
	}
}

func TestDecodeRejectsBadEntries(t *testing.T) {
	tests := []struct {
		name  string
		entry []byte
		want  string
	}{
		{"entry too short", []byte{entryVersion}, "1 bytes is too short"},
		{"unknown entry version", []byte{9, byte(kindPutPeerStatus), '{', '}'},
			"log entry version 9 is not supported"},
		{"unknown command kind", []byte{entryVersion, 200, 2, '{', '}'},
			"unknown command kind 200"},
		{"body not MessagePack", []byte{entryVersion, byte(kindPutPeerStatus), 1, 'x'},
			"decode put_peer_status log entry"},
		{"length past the end", []byte{entryVersion, byte(kindPutPeerStatus), 9, '{', '}'},
			"invalid command length"},
		{"document on a kind without one",
			[]byte{entryVersion, byte(kindPutPeerStatus), 1, 0x80, 'x'},
			"carries 1 bytes after its command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeCommand(tt.entry)
			require.ErrorContains(t, err, tt.want)
		})
	}
}

func TestPrepareRejectsInvalidCommands(t *testing.T) {
	noSequence := localRecord(1)
	noSequence.HasSequence = false
	fetchedLocal := localRecord(1)
	fetchedLocal.Source = SourceFetched
	emptyDocument := federatedRecord("org-a.test", 1, SourceFetched)
	emptyDocument.Document = nil
	otherBootstrap := federatedRecord("org-z.test", 1, SourceBootstrap)
	otherStatus := peerStatus("org-z.test", 0)

	tests := []struct {
		name string
		cmd  Command
		want string
	}{
		{"delete without trust domain", DeleteRelationship{}, "the trust domain is empty"},
		{"local bundle without sequence", PutLocalBundle{Record: noSequence},
			"has no sequence"},
		{"local sequence not rising", PutLocalBundle{Record: localRecord(3), PrevSequence: 3},
			"sequence 3 is not higher than the previous sequence 3"},
		{"local bundle fetched source", PutLocalBundle{Record: fetchedLocal},
			`has source "fetched"`},
		{"federated bundle local source",
			PutFederatedBundle{Record: federatedRecord("org-a.test", 1, SourceLocal)},
			"cannot have source \"local\""},
		{"federated bundle unknown source",
			PutFederatedBundle{Record: federatedRecord("org-a.test", 1, "guessed")},
			`unknown bundle source "guessed"`},
		{"federated bundle missing source",
			PutFederatedBundle{Record: federatedRecord("org-a.test", 1, "")},
			"the bundle source is missing"},
		{"federated bundle empty document", PutFederatedBundle{Record: emptyDocument},
			"the bundle document is empty"},
		{"override with fetched source", PutFederatedBundle{
			Record: federatedRecord("org-a.test", 1, SourceFetched), Override: true},
			`an override must have source "operator"`},
		{"status for other domain", PutFederatedBundle{
			Record: federatedRecord("org-a.test", 1, SourceFetched), Status: &otherStatus},
			`the status is for trust domain "org-z.test"`},
		{"bootstrap for other domain", CreateRelationship{
			Relationship: relationship("org-a.test"), Bootstrap: &otherBootstrap},
			`the bootstrap bundle is for trust domain "org-z.test"`},
		{"status without trust domain", PutPeerStatus{}, "the trust domain is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.cmd.prepare()
			require.ErrorContains(t, err, tt.want)
			require.ErrorContains(t, err, "raft: invalid "+tt.cmd.kind().String())
		})
	}
}

func TestPrepareFillsDefaults(t *testing.T) {
	local := localRecord(1)
	local.Source = ""
	prepared, err := PutLocalBundle{Record: local}.prepare()
	require.NoError(t, err)
	require.Equal(t, SourceLocal, prepared.(PutLocalBundle).Record.Source)

	bootstrap := federatedRecord("", 1, SourceOperator)
	prepared, err = CreateRelationship{Relationship: relationship("org-a.test"),
		Bootstrap: &bootstrap}.prepare()
	require.NoError(t, err)
	filled := prepared.(CreateRelationship).Bootstrap
	require.Equal(t, "org-a.test", filled.TrustDomain)
	require.Equal(t, SourceBootstrap, filled.Source)
	require.Empty(t, bootstrap.TrustDomain, "prepare must not change the caller's record")

	status := PeerStatus{LastError: "refused"}
	prepared, err = PutFederatedBundle{Record: federatedRecord("org-a.test", 1, SourceFetched),
		Status: &status}.prepare()
	require.NoError(t, err)
	require.Equal(t, "org-a.test", prepared.(PutFederatedBundle).Status.TrustDomain)
	require.Empty(t, status.TrustDomain, "prepare must not change the caller's status")
}
