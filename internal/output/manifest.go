package output

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// ManifestFile lists, in the output directory, the files that the writer
// created there. The writer removes only files named in it and its own
// temporary files. A file that another program put there is removed only when
// the writer replaced it by a file of the same name, such as "<trust
// domain>.pem", or when its name starts with the temporary file prefix.
const ManifestFile = ".bundlex.manifest.json"

// manifest is the JSON document of ManifestFile.
type manifest struct {
	// Files are names within the directory, sorted.
	Files []string `json:"files"`
}

// readManifest returns the names in dir's manifest, or none when there is no
// manifest yet. A manifest that cannot be used is an error, so that the writer
// removes nothing it cannot attribute to itself.
func readManifest(dir string) ([]string, error) {
	path := filepath.Join(dir, ManifestFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("output: read the manifest %s: %w", path, err)
	}
	var doc manifest
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("output: the manifest %s is invalid: %w; delete it, and "+
			"remove stale PEM files by hand, because bundlex removes only files that its "+
			"manifest lists", path, err)
	}
	for _, name := range doc.Files {
		// A name with a path separator would let an edited manifest remove files
		// outside the directory.
		if name != BundleMapFile && !isTrustDomainPEM(name) {
			return nil, fmt.Errorf("output: the manifest %s lists %q, which is not a file "+
				"name bundlex writes; delete the manifest, and remove stale PEM files by "+
				"hand", path, name)
		}
	}
	return doc.Files, nil
}

// writeManifest replaces dir's manifest with names, atomically.
func writeManifest(dir string, names []string) error {
	doc := manifest{Files: slices.Sorted(slices.Values(names))}
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return fmt.Errorf("output: encode %s: %w", ManifestFile, err)
	}
	return writeAtomic(dir, ManifestFile, append(data, '\n'))
}

// union returns the names in a or b, sorted, without duplicates.
func union(a, b []string) []string {
	return slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(a), b...))))
}

// removeStale removes the files of previous that are not in files, and
// temporary files left by an earlier crash. It returns the names removed, except
// temporary files. A listed file that is missing or is no longer a regular
// file is skipped.
func removeStale(dir string, previous []string, files map[string][]byte) ([]string, error) {
	var removed []string
	for _, name := range previous {
		if _, keep := files[name]; keep {
			continue
		}
		path := filepath.Join(dir, name)
		info, err := os.Lstat(path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return removed, fmt.Errorf("output: inspect %s: %w", path, err)
		}
		if !info.Mode().IsRegular() {
			continue
		}
		if err := os.Remove(path); err != nil {
			return removed, fmt.Errorf("output: remove %s: %w", path, err)
		}
		removed = append(removed, name)
	}
	if err := removeTemporaryFiles(dir); err != nil {
		return removed, err
	}
	if len(removed) == 0 {
		return nil, nil
	}
	return removed, syncDir(dir)
}

// removeTemporaryFiles removes the temporary files that a crash left between
// create and rename. Their names start with tempPrefix, which only the writer
// uses.
func removeTemporaryFiles(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("output: list %s: %w", dir, err)
	}
	for _, entry := range entries {
		name := entry.Name()
		if !entry.Type().IsRegular() || !strings.HasPrefix(name, tempPrefix) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("output: remove %s: %w", filepath.Join(dir, name), err)
		}
	}
	return nil
}
