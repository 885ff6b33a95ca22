package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/stretchr/testify/require"
)

const mintedID = "spiffe://example.org/agents/planner"

// requireMode checks the permission bits of the regular file or directory at path.
func requireMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	info, err := os.Lstat(path)
	require.NoError(t, err)
	require.Equal(t, want, info.Mode().Perm(), path)
	require.Zero(t, info.Mode()&os.ModeSymlink, "%s is a symbolic link", path)
}

func TestMintWriteCreatesDirectory(t *testing.T) {
	socket, _ := startRealNode(t)
	dir := filepath.Join(t.TempDir(), "agents", "planner")

	stdout, stderr, code := runCLI(t, socket, "", "svid", "mint", "x509", "--spiffe-id",
		mintedID, "--write", dir)
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "X509-SVID written to "+filepath.Join(dir, "svid.pem")+"\n"+
		"Private key written to "+filepath.Join(dir, "key.pem")+"\n"+
		"Root CAs written to "+filepath.Join(dir, "bundle.pem")+"\n", stdout)

	requireMode(t, dir, 0o700)
	requireMode(t, filepath.Join(dir, "key.pem"), 0o600)
	requireMode(t, filepath.Join(dir, "svid.pem"), 0o644)
	requireMode(t, filepath.Join(dir, "bundle.pem"), 0o644)

	bundlePEM, err := os.ReadFile(filepath.Join(dir, "bundle.pem"))
	require.NoError(t, err)
	require.Equal(t, showLocalBundle(t, socket).PEM, string(bundlePEM))
	svid, err := x509svid.Load(filepath.Join(dir, "svid.pem"), filepath.Join(dir, "key.pem"))
	require.NoError(t, err)
	roots, err := x509bundle.Load(spiffeid.RequireTrustDomainFromString("example.org"),
		filepath.Join(dir, "bundle.pem"))
	require.NoError(t, err)
	id, _, err := x509svid.Verify(svid.Certificates, roots)
	require.NoError(t, err)
	require.Equal(t, mintedID, id.String())

	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 3, "no temporary file may stay behind")
}

func TestMintWriteReplacesExistingFiles(t *testing.T) {
	socket, _ := startRealNode(t)
	dir := t.TempDir()
	keyPath := filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(keyPath, []byte("old key"), 0o644))
	require.NoError(t, os.Chmod(keyPath, 0o644))
	// svid.pem is a link to a file that the command must leave alone.
	target := filepath.Join(t.TempDir(), "elsewhere.pem")
	require.NoError(t, os.WriteFile(target, []byte("not to be overwritten"), 0o600))
	require.NoError(t, os.Symlink(target, filepath.Join(dir, "svid.pem")))
	require.NoError(t, os.Symlink(target, filepath.Join(dir, "bundle.pem")))

	_, stderr, code := runCLI(t, socket, "", "x509", "mint", "--spiffe-id", mintedID,
		"--write", dir)
	require.Equal(t, 0, code, stderr)

	requireMode(t, keyPath, 0o600)
	requireMode(t, filepath.Join(dir, "svid.pem"), 0o644)
	requireMode(t, filepath.Join(dir, "bundle.pem"), 0o644)
	untouched, err := os.ReadFile(target)
	require.NoError(t, err)
	require.Equal(t, "not to be overwritten", string(untouched))
	svid, err := x509svid.Load(filepath.Join(dir, "svid.pem"), keyPath)
	require.NoError(t, err)
	require.Equal(t, mintedID, svid.ID.String())
}

func TestMintWriteIntoFileFails(t *testing.T) {
	socket, _ := startRealNode(t)
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, []byte("x"), 0o600))

	stdout, stderr, code := runCLI(t, socket, "", "svid", "mint", "x509", "--spiffe-id",
		mintedID, "--write", file)
	require.Equal(t, 1, code)
	require.Empty(t, stdout)
	require.Equal(t, "Error: create the --write directory: mkdir "+file+": not a directory\n",
		stderr)
}
