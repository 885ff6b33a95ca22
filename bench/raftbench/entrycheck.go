package main

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"

	hraft "github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"

	"github.com/bundlex/bundlex/raft"
)

// entrySizes are the log entry sizes of the two kinds of write, in bytes.
type entrySizes map[workloadKind]int

// checkEntries applies one write of each kind through a single-node bundlex store,
// closes it and compares the entries in its BoltDB log with what encodeEntry
// returns for the same commands. A match means the raw baseline replicates entries
// of exactly the bytes, and so the size, that bundlex writes.
func checkEntries(dir string, wl *workload) (entrySizes, error) {
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	store, err := raft.Open(raft.Config{NodeID: "check", DataDir: dir,
		BindAddr: "127.0.0.1:0", Bootstrap: true})
	if err != nil {
		return nil, fmt.Errorf("raftbench: open the entry check store: %w", err)
	}
	kinds := []workloadKind{bundleWrites, relationshipWrites}
	var want [][]byte
	err = waitForStoreLeadership(ctx, store)
	if err == nil {
		err = store.Apply(ctx, raft.CreateRelationship{Relationship: relationship(
			trustDomain(0))})
	}
	for _, kind := range kinds {
		if err != nil {
			break
		}
		cmd := wl.next(kind, 0)
		var entry []byte
		if entry, err = encodeEntry(cmd); err == nil {
			want = append(want, entry)
			err = store.Apply(ctx, cmd)
		}
	}
	if closeErr := store.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return nil, fmt.Errorf("raftbench: write the entry check commands: %w", err)
	}

	got, err := lastCommandEntries(filepath.Join(dir, "raft", "raft.db"), len(want))
	if err != nil {
		return nil, err
	}
	sizes := entrySizes{}
	for i, kind := range kinds {
		if !bytes.Equal(got[i], want[i]) {
			return nil, fmt.Errorf("raftbench: bundlex wrote a %s entry of %d bytes "+
				"that differs from the %d bytes the raw baseline would write; update "+
				"encodeEntry to the layout of raft/codec.go", kind, len(got[i]), len(want[i]))
		}
		sizes[kind] = len(want[i])
	}
	return sizes, nil
}

// lastCommandEntries returns the data of the last count command entries of the log
// in the BoltDB file at path, oldest first.
func lastCommandEntries(path string, count int) ([][]byte, error) {
	bolt, err := raftboltdb.New(raftboltdb.Options{Path: path,
		BoltOptions: &bbolt.Options{ReadOnly: true, Timeout: raft.DefaultBoltOpenTimeout}})
	if err != nil {
		return nil, fmt.Errorf("raftbench: open %s to read its log: %w", path, err)
	}
	defer bolt.Close()
	first, err := bolt.FirstIndex()
	if err != nil {
		return nil, fmt.Errorf("raftbench: read the first index of %s: %w", path, err)
	}
	last, err := bolt.LastIndex()
	if err != nil {
		return nil, fmt.Errorf("raftbench: read the last index of %s: %w", path, err)
	}
	var entries [][]byte
	for index := last; index >= first && index > 0 && len(entries) < count; index-- {
		var entry hraft.Log
		if err := bolt.GetLog(index, &entry); err != nil {
			return nil, fmt.Errorf("raftbench: read log entry %d of %s: %w", index, path, err)
		}
		if entry.Type == hraft.LogCommand {
			entries = append([][]byte{entry.Data}, entries...)
		}
	}
	if len(entries) < count {
		return nil, fmt.Errorf("raftbench: %s has %d command entries, not %d", path,
			len(entries), count)
	}
	return entries, nil
}
