package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/stretchr/testify/require"
)

func TestRewriteSPIREFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"x509 mint flags", []string{"x509", "mint", "-spiffeID", "spiffe://e.org/w",
			"-ttl=1h", "-write", "dir"}, []string{"x509", "mint", "--spiffe-id",
			"spiffe://e.org/w", "--ttl=1h", "--write", "dir"}},
		{"jwt mint after root flags", []string{"--socket", "/s", "--output=json", "jwt",
			"mint", "-audience", "a", "-audience=b", "-spiffeID=spiffe://e.org/w"},
			[]string{"--socket", "/s", "--output=json", "jwt", "mint", "--audience", "a",
				"--audience=b", "--spiffe-id=spiffe://e.org/w"}},
		{"bundlex flags kept", []string{"jwt", "mint", "--spiffe-id", "x", "-h"},
			[]string{"jwt", "mint", "--spiffe-id", "x", "-h"}},
		{"after double dash", []string{"x509", "mint", "--", "-ttl"},
			[]string{"x509", "mint", "--", "-ttl"}},
		{"svid mint untouched", []string{"svid", "mint", "x509", "-spiffeID", "x"},
			[]string{"svid", "mint", "x509", "-spiffeID", "x"}},
		{"other command untouched", []string{"bundle", "show", "-ttl"},
			[]string{"bundle", "show", "-ttl"}},
		{"socket named like a command", []string{"--socket", "x509", "jwt", "mint",
			"-ttl", "1m"}, []string{"--socket", "x509", "jwt", "mint", "--ttl", "1m"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := rewriteSPIREFlags(tt.args)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestSPIREMintFlagsOnRealNode(t *testing.T) {
	socket, _ := startRealNode(t)
	trusted, err := spiffebundle.Parse(spiffeid.RequireTrustDomainFromString("example.org"),
		showLocalBundle(t, socket).Document)
	require.NoError(t, err)

	dir := filepath.Join(t.TempDir(), "planner")
	_, stderr, code := runCLI(t, socket, "", "x509", "mint", "-spiffeID", mintedID,
		"-ttl", "10m", "-write", dir)
	require.Equal(t, 0, code, stderr)
	svid, err := x509svid.Load(filepath.Join(dir, "svid.pem"), filepath.Join(dir, "key.pem"))
	require.NoError(t, err)
	require.Equal(t, mintedID, svid.ID.String())

	tokenPath := filepath.Join(t.TempDir(), "token")
	stdout, stderr, code := runCLI(t, socket, "", "jwt", "mint", "-spiffeID="+mintedID,
		"-audience", "org-b", "-audience", "org-c", "-ttl", "1m", "-write", tokenPath)
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "JWT-SVID written to "+tokenPath+"\n", stdout)
	requireMode(t, tokenPath, 0o600)
	token, err := os.ReadFile(tokenPath)
	require.NoError(t, err)
	parsed, err := jwtsvid.ParseAndValidate(strings.TrimSpace(string(token)), trusted,
		[]string{"org-c"})
	require.NoError(t, err)
	require.Equal(t, mintedID, parsed.ID.String())

	stdout, stderr, code = runCLI(t, socket, "", "x509", "mint", "-spiffeID", mintedID,
		"-dns", "planner.example.org")
	require.Equal(t, 1, code)
	require.Empty(t, stdout)
	require.Equal(t, "Error: -dns is not supported: bundlex mints X509-SVIDs with the "+
		"SPIFFE ID as the only name; remove -dns\n", stderr)
}
