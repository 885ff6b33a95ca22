package output

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/bundlex/bundlex/bundle"
	"github.com/bundlex/bundlex/internal/workload"
)

// tempPrefix starts the name of every temporary file, so that files left by a
// crash can be recognized and removed.
const tempPrefix = ".bundlex-"

// bundleMap is the SPIFFE bundle map document (SPIFFE Trust Domain and Bundle
// 5.1.1: "trust_domains" must be present and may be empty).
type bundleMap struct {
	TrustDomains map[string]json.RawMessage `json:"trust_domains"`
}

// render returns the content of every file for snapshot, by file name.
func render(snapshot *workload.Snapshot) (map[string][]byte, error) {
	files := make(map[string][]byte)
	doc := bundleMap{TrustDomains: make(map[string]json.RawMessage)}
	for td, b := range snapshot.Bundles() {
		if len(b.X509Authorities) > 0 {
			files[td.Name()+PEMSuffix] = bundle.MarshalPEM(b)
		}
		// SPIFFE Trust Domain and Bundle 5.1.1: producers should omit the refresh
		// hint from bundles in a map, because it applies to one bundle, not to
		// the map.
		withoutHint := b.Clone()
		withoutHint.RefreshHint = 0
		raw, err := bundle.Marshal(withoutHint)
		if err != nil {
			return nil, fmt.Errorf("output: encode bundle of %s: %w", td, err)
		}
		doc.TrustDomains[td.Name()] = raw
	}
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("output: encode %s: %w", BundleMapFile, err)
	}
	files[BundleMapFile] = append(data, '\n')
	return files, nil
}

// ensureDir creates dir with DirMode when it is missing. The mode is set
// explicitly because the process umask would otherwise narrow it.
func ensureDir(dir string) error {
	info, err := os.Stat(dir)
	if err == nil {
		if !info.IsDir() {
			return fmt.Errorf("output: %s is not a directory; choose another output "+
				"directory", dir)
		}
		return nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("output: inspect directory %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, DirMode); err != nil {
		return fmt.Errorf("output: create directory %s: %w", dir, err)
	}
	if err := os.Chmod(dir, DirMode); err != nil {
		return fmt.Errorf("output: set mode %o on %s: %w", DirMode, dir, err)
	}
	return nil
}

// writeIfChanged replaces dir/name with data unless the file already contains
// exactly data. It reports whether it wrote.
func writeIfChanged(dir, name string, data []byte) (bool, error) {
	current, err := os.ReadFile(filepath.Join(dir, name))
	if err == nil && bytes.Equal(current, data) {
		return false, nil
	}
	// A read error other than "not found" is not fatal: replacing the file is
	// the repair.
	if err := writeAtomic(dir, name, data); err != nil {
		return false, err
	}
	return true, nil
}

// writeAtomic replaces dir/name with data so that readers see the old or the
// new content and never a part. It writes a temporary file in the same
// directory, syncs it and renames it over the target. It then syncs the
// directory so that the rename survives a crash.
func writeAtomic(dir, name string, data []byte) (err error) {
	tmp, err := os.CreateTemp(dir, tempPrefix+name+"-*")
	if err != nil {
		return fmt.Errorf("output: create temporary file for %s in %s: %w", name, dir, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("output: write %s: %w", tmp.Name(), err)
	}
	// CreateTemp uses mode 0600. Chmod sets the final mode regardless of umask.
	if err := tmp.Chmod(FileMode); err != nil {
		return fmt.Errorf("output: set mode %o on %s: %w", FileMode, tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("output: sync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("output: close %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("output: replace %s: %w", filepath.Join(dir, name), err)
	}
	return syncDir(dir)
}

// syncDir flushes the directory entry changes of dir to disk.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("output: open directory %s for sync: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("output: sync directory %s: %w", dir, err)
	}
	return nil
}
