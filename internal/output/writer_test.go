package output

import (
	"crypto/x509"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/bundlex/bundlex/bundle"
	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/stretchr/testify/require"
)

// readBundleMap parses bundles.json as a SPIFFE bundle map consumer would:
// every key must be a trust domain name and every value a SPIFFE bundle.
func readBundleMap(t *testing.T, dir string) map[string]*spiffebundle.Bundle {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, BundleMapFile))
	require.NoError(t, err)
	var doc map[string]map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(data, &doc))
	require.Len(t, doc, 1, "the map has only the trust_domains member")
	entries, ok := doc["trust_domains"]
	require.True(t, ok, "trust_domains member missing")
	out := make(map[string]*spiffebundle.Bundle)
	for name, raw := range entries {
		td, err := spiffeid.TrustDomainFromString(name)
		require.NoError(t, err)
		require.Equal(t, td.Name(), name, "keys are trust domain names, not SPIFFE IDs")
		b, err := spiffebundle.Parse(td, raw)
		require.NoError(t, err)
		out[name] = b
	}
	return out
}

func TestWriteFileContent(t *testing.T) {
	f := newFixture(t)
	dir := outputDir(t)
	w := &Writer{Dir: dir}
	result, err := w.Write(f.snapshot)
	require.NoError(t, err)
	require.Equal(t, []string{BundleMapFile, "org-a.test.pem", "org-b.test.pem"}, result.Written)
	require.Empty(t, result.Removed)

	require.True(t, bundle.SameKeys(newBundle(tdLocal, f.localCAs), readPEM(t, dir, tdLocal)))
	require.True(t, bundle.SameKeys(newBundle(tdB, []*x509.Certificate{f.caB}), readPEM(t, dir, tdB)))
	_, err = os.Stat(filepath.Join(dir, "org-c.test.pem"))
	require.ErrorIs(t, err, os.ErrNotExist, "no PEM file for a trust domain without CAs")

	bundles := readBundleMap(t, dir)
	require.Len(t, bundles, 3)
	for td, want := range f.snapshot.Bundles() {
		got := bundles[td.Name()]
		require.NotNil(t, got, "bundle of %s missing", td)
		withoutHint := want.Clone()
		withoutHint.RefreshHint = 0
		withoutHint.Normalize() // go-spiffe compares certificates in order
		require.True(t, withoutHint.SPIFFEBundle().Equal(got), "bundle of %s differs", td)
		_, hasHint := got.RefreshHint()
		require.False(t, hasHint, "bundle map entries carry no refresh hint")
	}
	sequence, ok := bundles["org-a.test"].SequenceNumber()
	require.True(t, ok)
	require.Equal(t, uint64(4), sequence)

	info, err := os.Stat(dir)
	require.NoError(t, err)
	require.Equal(t, DirMode, info.Mode().Perm())
	for _, name := range result.Written {
		info, err := os.Stat(filepath.Join(dir, name))
		require.NoError(t, err)
		require.Equal(t, FileMode, info.Mode().Perm(), "mode of %s", name)
	}
}

func TestWriteAfterRotation(t *testing.T) {
	f := newFixture(t)
	dir := outputDir(t)
	w := &Writer{Dir: dir}
	_, err := w.Write(f.snapshot)
	require.NoError(t, err)

	newCAB := newCA(t, tdB)
	rotated := withFederated(f.snapshot, func(fed map[spiffeid.TrustDomain]*bundle.Bundle) {
		fed[tdB] = newBundle(tdB, []*x509.Certificate{f.caB, newCAB})
	})
	result, err := w.Write(rotated)
	require.NoError(t, err)
	require.Equal(t, []string{BundleMapFile, "org-b.test.pem"}, result.Written,
		"only the files whose content changed are written")

	pemB := readPEM(t, dir, tdB)
	require.Len(t, pemB.X509Authorities, 2)
	require.True(t, slices.ContainsFunc(pemB.X509Authorities, newCAB.Equal))
	b, ok := readBundleMap(t, dir)["org-b.test"]
	require.True(t, ok)
	require.True(t, b.HasX509Authority(newCAB))
}

func TestWriteRemovesGoneTrustDomain(t *testing.T) {
	f := newFixture(t)
	dir := outputDir(t)
	w := &Writer{Dir: dir}
	_, err := w.Write(f.snapshot)
	require.NoError(t, err)
	others := map[string]string{
		"notes.txt":             "operator notes",
		"Upper.pem":             "not a trust domain name",
		".bundlex-x.pem-123":    "", // left by a crash: removed
		"org-a.test.pem.backup": "operator backup",
	}
	for name, content := range others {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600))
	}

	result, err := w.Write(withFederated(f.snapshot,
		func(fed map[spiffeid.TrustDomain]*bundle.Bundle) { delete(fed, tdB) }))
	require.NoError(t, err)
	require.Equal(t, []string{"org-b.test.pem"}, result.Removed)
	require.Equal(t, []string{BundleMapFile}, result.Written)
	_, err = os.Stat(filepath.Join(dir, "org-b.test.pem"))
	require.ErrorIs(t, err, os.ErrNotExist)
	require.NotContains(t, readBundleMap(t, dir), "org-b.test")
	require.Contains(t, readBundleMap(t, dir), "org-a.test")

	for name := range others {
		_, err := os.Stat(filepath.Join(dir, name))
		if name == ".bundlex-x.pem-123" {
			require.ErrorIs(t, err, os.ErrNotExist, "leftover temporary file kept")
			continue
		}
		require.NoError(t, err, "file %s must be left alone", name)
	}
}

func TestWriteSkipsUnchangedFiles(t *testing.T) {
	f := newFixture(t)
	dir := outputDir(t)
	w := &Writer{Dir: dir}
	first, err := w.Write(f.snapshot)
	require.NoError(t, err)

	// Move every modification time into the past, so that a rewrite within
	// the file system's timestamp granularity still shows.
	past := time.Now().Add(-time.Hour).Truncate(time.Second)
	before := make(map[string]os.FileInfo)
	for _, name := range first.Written {
		path := filepath.Join(dir, name)
		require.NoError(t, os.Chtimes(path, past, past))
		info, err := os.Stat(path)
		require.NoError(t, err)
		before[name] = info
	}

	// A new version with the same keys in another order changes no file.
	same := withFederated(f.snapshot, func(map[spiffeid.TrustDomain]*bundle.Bundle) {})
	same.Local = f.snapshot.Local.Clone()
	slices.Reverse(same.Local.X509Authorities)
	result, err := w.Write(same)
	require.NoError(t, err)
	require.Empty(t, result.Written)
	require.Empty(t, result.Removed)
	for name, old := range before {
		info, err := os.Stat(filepath.Join(dir, name))
		require.NoError(t, err)
		require.True(t, info.ModTime().Equal(past), "%s was rewritten", name)
		require.True(t, os.SameFile(old, info), "%s was replaced", name)
	}
}

func TestWriteRejectsBadDirectory(t *testing.T) {
	f := newFixture(t)
	blocker := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(blocker, nil, 0o600))
	cases := []struct {
		name, dir, want string
	}{
		{"directory empty", "", "output: Writer.Dir is empty"},
		{"path is a file", blocker, "is not a directory"},
		{"parent is a file", filepath.Join(blocker, "sub"), "output: inspect directory"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := (&Writer{Dir: tc.dir}).Write(f.snapshot)
			require.ErrorContains(t, err, tc.want)
		})
	}
}
