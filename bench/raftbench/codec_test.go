package main

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/stretchr/testify/require"

	"github.com/bundlex/bundlex/raft"
)

func TestEntrySizeSameForEveryWrite(t *testing.T) {
	wl, err := newWorkload(100)
	require.NoError(t, err)
	for _, kind := range []workloadKind{bundleWrites, relationshipWrites} {
		t.Run(string(kind)+" entries", func(t *testing.T) {
			first, err := encodeEntry(wl.next(kind, 0))
			require.NoError(t, err)
			for _, w := range []int{0, 7, 99} {
				for range 3 {
					entry, err := encodeEntry(wl.next(kind, w))
					require.NoError(t, err)
					require.Len(t, entry, len(first), "writer %d", w)
				}
			}
		})
	}
}

func TestDocumentIsAboutTwoKiB(t *testing.T) {
	wl, err := newWorkload(1)
	require.NoError(t, err)
	require.InDelta(t, 2048, wl.documentSize(), 256)
}

func TestPercentileNearestRank(t *testing.T) {
	sorted := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, tc := range []struct {
		name string
		q    float64
		want time.Duration
	}{
		{"median of ten", 0.5, 5},
		{"p99 of ten", 0.99, 10},
		{"p10 of ten", 0.1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, percentile(sorted, tc.q))
		})
	}
	require.Zero(t, percentile(nil, 0.5))
}

// BenchmarkEntryCodec compares encoding/json, which bundlex first used for its log
// entries, with go-msgpack, which it uses now: raft/apply.go encodes once on the
// leader and raft/fsm.go decodes on every node. The "without document" cases show
// what carrying the document inside the encoded command costs.
func BenchmarkEntryCodec(b *testing.B) {
	wl, err := newWorkload(1)
	require.NoError(b, err)
	bundleCmd := wl.next(bundleWrites, 0).(raft.PutFederatedBundle)
	relationshipCmd := wl.next(relationshipWrites, 0).(raft.UpdateRelationship)
	withoutDocument := bundleCmd
	withoutDocument.Record.Document = nil

	b.Run("bundle/json encode", func(b *testing.B) { benchmarkJSONEncode(b, bundleCmd) })
	b.Run("bundle/json decode", func(b *testing.B) {
		benchmarkJSONDecode[raft.PutFederatedBundle](b, bundleCmd)
	})
	b.Run("bundle/json decode without document", func(b *testing.B) {
		benchmarkJSONDecode[raft.PutFederatedBundle](b, withoutDocument)
	})
	b.Run("bundle/msgpack decode", func(b *testing.B) {
		var handle codec.MsgpackHandle
		var body []byte
		require.NoError(b, codec.NewEncoderBytes(&body, &handle).Encode(bundleCmd))
		b.ReportAllocs()
		for b.Loop() {
			var cmd raft.PutFederatedBundle
			if err := codec.NewDecoderBytes(body, &handle).Decode(&cmd); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("relationship/json encode", func(b *testing.B) {
		benchmarkJSONEncode(b, relationshipCmd)
	})
	b.Run("relationship/json decode", func(b *testing.B) {
		benchmarkJSONDecode[raft.UpdateRelationship](b, relationshipCmd)
	})
}

func benchmarkJSONEncode(b *testing.B, cmd raft.Command) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(cmd); err != nil {
			b.Fatal(err)
		}
	}
}

func benchmarkJSONDecode[T raft.Command](b *testing.B, cmd raft.Command) {
	body, err := json.Marshal(cmd)
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		var decoded T
		if err := json.Unmarshal(body, &decoded); err != nil {
			b.Fatal(err)
		}
	}
}
