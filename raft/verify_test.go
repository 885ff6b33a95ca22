package raft

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"

	"github.com/hashicorp/go-hclog"
	hraft "github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/stretchr/testify/require"
	"go.etcd.io/bbolt"
)

// corruptStoreEntries is how many no-op entries buildDamageableStore appends, so
// that the log bucket is a tree of several levels with branch pages.
const corruptStoreEntries = 3000

// buildDamageableStore creates a store under dir through real Raft, populates it,
// appends no-op log entries and closes it. It returns the state that a reopened
// store must show once it applied the returned index, that of the last command.
func buildDamageableStore(t *testing.T, dir string) (stateView, uint64) {
	t.Helper()
	s := openLeader(t, singleNodeConfig(t, "n1", dir))
	populate(t, s)
	want := viewOf(s)
	require.NoError(t, s.Close())

	bolt, err := raftboltdb.New(raftboltdb.Options{Path: dbPath(dir)})
	require.NoError(t, err)
	defer bolt.Close()
	last, err := bolt.LastIndex()
	require.NoError(t, err)
	var latest hraft.Log
	require.NoError(t, bolt.GetLog(last, &latest))
	logs := make([]*hraft.Log, 0, corruptStoreEntries)
	for i := uint64(1); i <= corruptStoreEntries; i++ {
		// No-op entries carry no command, so the reopened state stays want.
		logs = append(logs, &hraft.Log{Index: last + i, Term: latest.Term,
			Type: hraft.LogNoop, Data: bytes.Repeat([]byte{byte(i)}, 500)})
	}
	require.NoError(t, bolt.StoreLogs(logs))
	return want, last
}

func dbPath(dataDir string) string { return filepath.Join(dataDir, "raft", "raft.db") }

// boltLayout returns the page size, the number of pages in use and a page in the
// middle of the reachable ones (not a meta or freelist page) of a healthy file.
func boltLayout(t *testing.T, path string) (pageSize int, pageCount, middle uint64) {
	t.Helper()
	file, err := os.Open(path)
	require.NoError(t, err)
	defer file.Close()
	info, err := file.Stat()
	require.NoError(t, err)
	c := &boltCheck{file: file, size: info.Size()}
	require.NoError(t, c.readMeta())
	require.NoError(t, c.checkPages())
	var tree []uint64
	for id := uint64(2); id < c.meta.pageCount; id++ {
		if hasBit(c.reachable, id) && id != c.meta.freelist {
			tree = append(tree, id)
		}
	}
	require.Greater(t, len(tree), 10, "the log must span many pages")
	return c.pageSize, c.meta.pageCount, tree[len(tree)/2]
}

func overwrite(t *testing.T, path string, offset int64, data []byte) {
	t.Helper()
	file, err := os.OpenFile(path, os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = file.WriteAt(data, offset)
	require.NoError(t, err)
	require.NoError(t, file.Close())
}

func randomBytes(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, seed))
	data := make([]byte, n)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	return data
}

func TestOpenRejectsDamagedDatabase(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, path string)
		reason string
	}{
		{"truncated to half", func(t *testing.T, path string) {
			pageSize, pages, _ := boltLayout(t, path)
			require.NoError(t, os.Truncate(path, int64(pages)*int64(pageSize)/2))
		}, "the file was cut short"},
		{"meta pages random", func(t *testing.T, path string) {
			pageSize, _, _ := boltLayout(t, path)
			overwrite(t, path, 0, randomBytes(1, 2*pageSize))
		}, "both meta pages are invalid"},
		{"middle page zeroed", func(t *testing.T, path string) {
			pageSize, _, middle := boltLayout(t, path)
			overwrite(t, path, int64(middle)*int64(pageSize), make([]byte, pageSize))
		}, "records the ID 0, so it was overwritten"},
		{"middle page random", func(t *testing.T, path string) {
			pageSize, _, middle := boltLayout(t, path)
			overwrite(t, path, int64(middle)*int64(pageSize), randomBytes(2, pageSize))
		}, "so it was overwritten"},
		{"middle page body random", func(t *testing.T, path string) {
			// The page header stays intact, so only the element checks can see it.
			pageSize, _, middle := boltLayout(t, path)
			offset := int64(middle)*int64(pageSize) + boltPageHeaderSize
			overwrite(t, path, offset, randomBytes(3, 256))
		}, "element"},
		{"empty file", func(t *testing.T, path string) {
			require.NoError(t, os.Truncate(path, 0))
		}, "the file is empty (0 bytes)"},
		{"not a bolt file", func(t *testing.T, path string) {
			text := bytes.Repeat([]byte(`{"note": "this is not a database"}`+"\n"), 300)
			require.NoError(t, os.WriteFile(path, text, 0o600))
		}, "both meta pages are invalid"},
		{"a few bytes only", func(t *testing.T, path string) {
			require.NoError(t, os.WriteFile(path, []byte("bolt\n"), 0o600))
		}, "too short for a meta page"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			buildDamageableStore(t, dir)
			path := dbPath(dir)
			tc.damage(t, path)
			before, err := os.ReadFile(path)
			require.NoError(t, err)

			var openErr error
			require.NotPanics(t, func() {
				var s *Store
				s, openErr = Open(singleNodeConfig(t, "n1", dir))
				if openErr == nil {
					_ = s.Close()
				}
			})
			require.Error(t, openErr)
			message := openErr.Error()
			require.Contains(t, message, "the Raft database "+path+" is damaged")
			require.Contains(t, message, tc.reason)
			require.Contains(t, message, "Move the directory "+filepath.Dir(path)+" aside")
			require.Contains(t, message, "bundlex snapshot restore")
			require.Contains(t, message, "bundlex cluster recover")

			after, err := os.ReadFile(path)
			require.NoError(t, err)
			require.True(t, bytes.Equal(before, after), "a failed Open must not write raft.db")
		})
	}
}

func TestOpenAcceptsOneDamagedMetaPage(t *testing.T) {
	dir := t.TempDir()
	want, lastIndex := buildDamageableStore(t, dir)
	path := dbPath(dir)
	pageSize, _, _ := boltLayout(t, path)
	// Damage the meta page of the older transaction, which bbolt keeps for a
	// crash during the write of the newer one.
	file, err := os.Open(path)
	require.NoError(t, err)
	c := &boltCheck{file: file}
	meta0, err := c.readMetaPage(0, pageSize)
	require.NoError(t, err)
	meta1, err := c.readMetaPage(1, pageSize)
	require.NoError(t, err)
	require.NoError(t, file.Close())
	older := int64(0)
	if meta1.txid < meta0.txid {
		older = 1
	}
	overwrite(t, path, older*int64(pageSize)+boltPageHeaderSize, randomBytes(4, 64))

	logs := &syncBuffer{}
	cfg := singleNodeConfig(t, "n1", dir)
	cfg.Logger = hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Info})
	s := openLeader(t, cfg)
	require.NoError(t, s.WaitForApplied(testContext(t), lastIndex))
	require.Equal(t, want, viewOf(s))
	require.Contains(t, logs.String(), "the Raft database has a damaged part that bbolt skips")
	require.Contains(t, logs.String(), fmt.Sprintf("meta page %d is invalid", older))
}

func TestCheckBoltFileAcceptsHealthyStores(t *testing.T) {
	for _, tc := range []struct {
		name  string
		build func(t *testing.T, path string)
	}{
		{"new store", func(t *testing.T, path string) {
			bolt, err := raftboltdb.New(raftboltdb.Options{Path: path})
			require.NoError(t, err)
			require.NoError(t, bolt.Close())
		}},
		{"long log", func(t *testing.T, path string) {
			writeBenchLog(t, filepath.Dir(path), 10_000, 300)
		}},
		{"compacted log", func(t *testing.T, path string) {
			writeBenchLog(t, filepath.Dir(path), 10_000, 300)
			bolt, err := raftboltdb.New(raftboltdb.Options{Path: path})
			require.NoError(t, err)
			defer bolt.Close()
			// As after a snapshot: the freed pages go to the freelist.
			require.NoError(t, bolt.DeleteRange(1, 8_000))
		}},
		{"entries larger than a page", func(t *testing.T, path string) {
			writeBenchLog(t, filepath.Dir(path), 50, 3*os.Getpagesize())
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "raft.db")
			tc.build(t, path)
			warnings, err := checkBoltFile(path)
			require.NoError(t, err)
			require.Empty(t, warnings)
			require.Empty(t, bboltCheckErrors(t, path), "bbolt's own check must agree")
		})
	}
}

// bboltCheckErrors returns what bbolt's Tx.Check reports for the file at path.
// Call it only on a file that checkBoltFile accepted: Tx.Check runs in a
// goroutine of its own, where a fault on a damaged page ends the process.
func bboltCheckErrors(t *testing.T, path string) []error {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true})
	require.NoError(t, err)
	defer db.Close()
	var errs []error
	require.NoError(t, db.View(func(tx *bbolt.Tx) error {
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		return nil
	}))
	return errs
}

// TestCheckBoltFileRandomDamage overwrites random bytes of a healthy file many
// times. Each time, checkBoltFile must return without a panic, and whenever it
// accepts the file, bbolt must read every key without a panic or fault and its
// own check must find nothing.
func TestCheckBoltFileRandomDamage(t *testing.T) {
	healthy := filepath.Join(t.TempDir(), "raft.db")
	writeBenchLog(t, filepath.Dir(healthy), 2000, 200)
	bolt, err := raftboltdb.New(raftboltdb.Options{Path: healthy})
	require.NoError(t, err)
	require.NoError(t, bolt.DeleteRange(1, 800))
	require.NoError(t, bolt.Close())
	original, err := os.ReadFile(healthy)
	require.NoError(t, err)

	rng := rand.New(rand.NewPCG(7, 11))
	path := filepath.Join(t.TempDir(), "raft.db")
	rejected := 0
	for round := range 300 {
		damagedCopy := bytes.Clone(original)
		offset := rng.IntN(len(damagedCopy))
		length := min(1+rng.IntN(64), len(damagedCopy)-offset)
		for i := range length {
			damagedCopy[offset+i] = byte(rng.Uint32())
		}
		require.NoError(t, os.WriteFile(path, damagedCopy, 0o600))

		var checkErr error
		require.NotPanics(t, func() { _, checkErr = checkBoltFile(path) },
			"round %d: %d bytes at offset %d", round, length, offset)
		if checkErr != nil {
			rejected++
			continue
		}
		require.NoError(t, readEveryKey(path), "round %d: %d bytes at offset %d", round,
			length, offset)
		require.Empty(t, bboltCheckErrors(t, path), "round %d: %d bytes at offset %d",
			round, length, offset)
	}
	t.Logf("rejected %d of 300 damaged copies", rejected)
	require.Positive(t, rejected)
}

// readEveryKey opens path with bbolt and reads every key and value of every
// bucket, turning a panic or memory fault into an error.
func readEveryKey(path string) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if recovered := recover(); recovered != nil {
			err = fmt.Errorf("bbolt panicked: %v", recovered)
		}
	}()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true})
	if err != nil {
		return err
	}
	defer db.Close()
	return db.View(func(tx *bbolt.Tx) error {
		return tx.ForEach(func(_ []byte, bucket *bbolt.Bucket) error {
			return bucket.ForEach(func(k, v []byte) error {
				_ = bytes.Clone(k)
				_ = bytes.Clone(v)
				return nil
			})
		})
	})
}

// panickingTransport panics where Open first uses the transport, as bbolt does
// on a damaged page, to exercise the guard that Open keeps behind the check.
type panickingTransport struct{ hraft.Transport }

func (panickingTransport) LocalAddr() hraft.ServerAddress { panic("simulated fault") }

func TestOpenTurnsPanicIntoError(t *testing.T) {
	dir := t.TempDir()
	cfg := singleNodeConfig(t, "n1", dir)
	_, inmem := hraft.NewInmemTransport("")
	cfg.Transport = panickingTransport{inmem}

	var openErr error
	require.NotPanics(t, func() { _, openErr = Open(cfg) })
	require.ErrorContains(t, openErr, "raft: reading the Raft data under "+
		filepath.Join(dir, "raft")+" failed with a panic: simulated fault")
	require.ErrorContains(t, openErr, "bundlex snapshot restore")

	// The guard released raft.db, so the next Open finds it unlocked.
	openLeader(t, singleNodeConfig(t, "n1", dir))
}
