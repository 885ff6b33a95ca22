package output

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/bundlex/bundlex/bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/stretchr/testify/require"
)

// readManifestFile returns the names that dir's manifest lists.
func readManifestFile(t *testing.T, dir string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	require.NoError(t, err)
	var doc struct {
		Files []string `json:"files"`
	}
	require.NoError(t, json.Unmarshal(data, &doc))
	return doc.Files
}

func withoutB(fed map[spiffeid.TrustDomain]*bundle.Bundle) { delete(fed, tdB) }

func TestWriteKeepsOperatorFiles(t *testing.T) {
	f := newFixture(t)
	dir := outputDir(t)
	require.NoError(t, os.MkdirAll(dir, DirMode))
	// Names that look like trust domains, written by someone else.
	operatorFiles := map[string]string{
		"example.org.pem": "operator CA",
		"custom-ca.pem":   "operator CA",
		"org-x.test.pem":  "a peer's CA copied by hand",
	}
	for name, content := range operatorFiles {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600))
	}
	w := &Writer{Dir: dir}
	t.Cleanup(func() { _ = w.Close() })
	_, err := w.Write(f.snapshot)
	require.NoError(t, err)

	result, err := w.Write(withFederated(f.snapshot, withoutB))
	require.NoError(t, err)
	require.Equal(t, []string{"org-b.test.pem"}, result.Removed)
	for name, content := range operatorFiles {
		data, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err, "operator file %s removed", name)
		require.Equal(t, content, string(data), "operator file %s changed", name)
	}
	require.Equal(t, []string{BundleMapFile, "org-a.test.pem"}, readManifestFile(t, dir))
}

func TestWriteRemovesListedFilesAfterRestart(t *testing.T) {
	f := newFixture(t)
	dir := outputDir(t)
	first := &Writer{Dir: dir}
	_, err := first.Write(f.snapshot)
	require.NoError(t, err)
	require.Equal(t, []string{BundleMapFile, "org-a.test.pem", "org-b.test.pem"},
		readManifestFile(t, dir))
	require.NoError(t, first.Close())

	// A new process finds the manifest of the previous one.
	second := &Writer{Dir: dir}
	t.Cleanup(func() { _ = second.Close() })
	result, err := second.Write(withFederated(f.snapshot, withoutB))
	require.NoError(t, err)
	require.Equal(t, []string{"org-b.test.pem"}, result.Removed)
	_, err = os.Stat(filepath.Join(dir, "org-b.test.pem"))
	require.ErrorIs(t, err, os.ErrNotExist)
	require.Equal(t, []string{BundleMapFile, "org-a.test.pem"}, readManifestFile(t, dir))
}

func TestWriteRejectsBadManifest(t *testing.T) {
	f := newFixture(t)
	cases := []struct {
		name, manifest, want string
	}{
		{"not JSON", "{", "is invalid"},
		{"path outside directory", `{"files": ["../outside.pem"]}`,
			`lists "../outside.pem", which is not a file name bundlex writes`},
		{"file bundlex never writes", `{"files": ["notes.txt"]}`,
			`lists "notes.txt"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			outside := filepath.Join(parent, "outside.pem")
			require.NoError(t, os.WriteFile(outside, []byte("keep"), 0o600))
			dir := filepath.Join(parent, "bundles")
			require.NoError(t, os.MkdirAll(dir, DirMode))
			notes := filepath.Join(dir, "notes.txt")
			require.NoError(t, os.WriteFile(notes, []byte("keep"), 0o600))
			require.NoError(t, os.WriteFile(filepath.Join(dir, ManifestFile),
				[]byte(tc.manifest), 0o600))

			w := &Writer{Dir: dir}
			t.Cleanup(func() { _ = w.Close() })
			_, err := w.Write(f.snapshot)
			require.ErrorContains(t, err, tc.want)
			require.ErrorContains(t, err, filepath.Join(dir, ManifestFile))
			require.FileExists(t, outside)
			require.FileExists(t, notes)
			_, err = os.Stat(filepath.Join(dir, BundleMapFile))
			require.ErrorIs(t, err, os.ErrNotExist, "nothing is written with a bad manifest")
		})
	}
}

func TestLockRejectsSecondWriter(t *testing.T) {
	f := newFixture(t)
	dir := outputDir(t)
	first := &Writer{Dir: dir}
	require.NoError(t, first.Lock())
	require.NoError(t, first.Lock(), "a second Lock of the holder succeeds")

	second := &Writer{Dir: dir}
	t.Cleanup(func() { _ = second.Close() })
	err := second.Lock()
	require.ErrorContains(t, err, "the output directory "+dir+" is in use by another "+
		"bundlex node")
	require.ErrorContains(t, err, "give each node its own output directory")
	_, err = second.Write(f.snapshot)
	require.ErrorContains(t, err, "is in use by another bundlex node")
	_, err = os.Stat(filepath.Join(dir, BundleMapFile))
	require.ErrorIs(t, err, os.ErrNotExist, "the second writer wrote nothing")

	_, err = first.Write(f.snapshot)
	require.NoError(t, err)
	require.NoError(t, first.Close())
	require.NoError(t, first.Close(), "a second Close does nothing")
	require.NoError(t, second.Lock(), "the lock is free after Close")
	require.FileExists(t, filepath.Join(dir, LockFile))
}
