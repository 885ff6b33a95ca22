package raft

import (
	"os"
	"path/filepath"
	"testing"

	hraft "github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/stretchr/testify/require"
	"go.etcd.io/bbolt"
)

// Size of the log that the check benchmarks build: more entries than a node keeps
// between snapshots with the default settings (8192 threshold plus 10240
// trailing), with commands of 1 KiB, about the size of a bundle record.
const (
	benchLogEntries   = 100_000
	benchEntryBytes   = 1024
	benchEntriesBatch = 1000
)

// writeBenchLog writes entries of size bytes into a new raft.db under dir, in
// batches as Raft's replication writes them, and returns the file's path.
func writeBenchLog(tb testing.TB, dir string, entries, size int) string {
	tb.Helper()
	path := filepath.Join(dir, "raft.db")
	store, err := raftboltdb.New(raftboltdb.Options{Path: path})
	require.NoError(tb, err)
	defer store.Close()
	require.NoError(tb, store.SetUint64([]byte("CurrentTerm"), 3))
	data := make([]byte, size)
	for first := 1; first <= entries; first += benchEntriesBatch {
		batch := make([]*hraft.Log, 0, benchEntriesBatch)
		for index := first; index < first+benchEntriesBatch && index <= entries; index++ {
			batch = append(batch, &hraft.Log{Index: uint64(index), Term: 3,
				Type: hraft.LogCommand, Data: data})
		}
		require.NoError(tb, store.StoreLogs(batch))
	}
	return path
}

// BenchmarkCheckBoltFile measures the check that Open runs on raft.db, on a
// file in the page cache.
func BenchmarkCheckBoltFile(b *testing.B) {
	path := writeBenchLog(b, b.TempDir(), benchLogEntries, benchEntryBytes)
	file, err := os.Open(path)
	require.NoError(b, err)
	info, err := file.Stat()
	require.NoError(b, err)
	c := &boltCheck{file: file, size: info.Size()}
	require.NoError(b, c.readMeta())
	require.NoError(b, file.Close())
	for b.Loop() {
		warnings, err := checkBoltFile(path)
		if err != nil || len(warnings) > 0 {
			b.Fatalf("check failed: %v %v", warnings, err)
		}
	}
	b.ReportMetric(float64(c.meta.pageCount)*float64(c.pageSize)/(1<<20), "MiB-in-use")
}

// BenchmarkBoltTxCheck measures bbolt's own Tx.Check on the same file, for
// comparison.
func BenchmarkBoltTxCheck(b *testing.B) {
	path := writeBenchLog(b, b.TempDir(), benchLogEntries, benchEntryBytes)
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true})
	require.NoError(b, err)
	defer db.Close()
	for b.Loop() {
		err := db.View(func(tx *bbolt.Tx) error {
			for err := range tx.Check() {
				return err
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
