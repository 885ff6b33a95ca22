package raft

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"go.etcd.io/bbolt"
)

// damagedAdvice returns the steps that bring back a node whose Raft data under
// raftDir is unusable. Moving only the raft directory keeps the node's
// signing keys, which live elsewhere in the data directory.
func damagedAdvice(raftDir string) string {
	return "the node cannot start with it. Move the directory " + raftDir + " aside " +
		"(keep the rest of the data directory, which holds the node's keys) and start " +
		"the node again. A member of a cluster that still has a leader gets the " +
		"replicated state back from the leader. A single node starts empty: then " +
		"restore your latest backup with `bundlex snapshot restore FILE`. If the " +
		"cluster lost its quorum, follow the recovery with `bundlex cluster recover` " +
		"in docs/cluster.md"
}

// CheckDatabase checks <dataDir>/raft/raft.db as Open does before it opens the
// file, for tools that work on a stopped node. A missing file passes. It waits up
// to lockTimeout for a process that uses the file, then returns an error wrapping
// bbolt.ErrTimeout.
func CheckDatabase(dataDir string, lockTimeout time.Duration) error {
	_, err := checkDatabase(filepath.Join(dataDir, "raft", "raft.db"), lockTimeout)
	return err
}

// verifyDatabase runs checkDatabase before bbolt opens raft.db at path, because
// bbolt panics or crashes the process on a damaged file, and logs its warnings.
func (s *Store) verifyDatabase(path string) error {
	warnings, err := checkDatabase(path, s.cfg.BoltOpenTimeout)
	for _, warning := range warnings {
		s.logger.Warn("the Raft database has a damaged part that bbolt skips", "file", path,
			"detail", warning)
	}
	return err
}

// checkDatabase checks the structure of raft.db at path. A missing file is new
// and passes. It holds bbolt's shared lock while it reads, so that a file in use
// by another process is reported as such and never read mid-write.
func checkDatabase(path string, lockTimeout time.Duration) ([]string, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("raft: check the Raft database %s: %w", path, err)
	}

	// A read-only open takes the lock and, in bbolt v1.3.5, reads only the two meta
	// pages after checking that the file is long enough for them, so it returns
	// errors rather than panicking. When it rejects the file, checkBoltFile still
	// runs and gives the reason.
	lock, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true,
		Timeout: lockTimeout})
	if errors.Is(err, bbolt.ErrTimeout) {
		return nil, fmt.Errorf("raft: open the Raft database %s: %w; another process is "+
			"using the data directory, so stop it", path, err)
	}
	if err == nil {
		defer lock.Close()
	}

	warnings, err := checkBoltFile(path)
	var damage *boltDamage
	if errors.As(err, &damage) {
		return warnings, fmt.Errorf("raft: the Raft database %s is damaged: %w; %s", path,
			damage, damagedAdvice(filepath.Dir(path)))
	}
	if err != nil {
		return warnings, fmt.Errorf("raft: check the Raft database %s: %w", path, err)
	}
	return warnings, nil
}

// guardedStart runs start and turns a panic into an error. bbolt panics when it
// reads a damaged page, and hashicorp/raft reads the log in NewRaft. A memory
// fault in bbolt's mapping of the file becomes a panic too, through
// SetPanicOnFault. verifyDatabase makes both unlikely: this is the second line.
//
// NOTE: only panics in this goroutine are caught. A panic in a goroutine that
// bbolt or hashicorp/raft starts, for example while reading the log later, still
// ends the process. A panic inside raftboltdb.New leaves the file open and
// locked until the process exits.
func (s *Store) guardedStart(dir string) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if recovered := recover(); recovered != nil {
			err = fmt.Errorf("raft: reading the Raft data under %s failed with a panic: "+
				"%v; raft.db or a snapshot there is probably damaged, and %s", dir,
				recovered, damagedAdvice(dir))
		}
	}()
	return s.start(dir)
}
