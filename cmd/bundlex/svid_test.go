package main

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/stretchr/testify/require"

	"github.com/bundlex/bundlex/internal/admin"
)

func TestSVIDMintOnRealNode(t *testing.T) {
	socket, _ := startRealNode(t)
	local := showLocalBundle(t, socket)
	trusted, err := spiffebundle.Parse(spiffeid.RequireTrustDomainFromString("example.org"),
		local.Document)
	require.NoError(t, err)
	const id = "spiffe://example.org/agents/planner"

	stdout, stderr, code := runCLI(t, socket, "", "--output", "json", "svid", "mint", "x509",
		"--spiffe-id", id, "--ttl", "10m")
	require.Equal(t, 0, code, stderr)
	var minted admin.X509SVID
	require.NoError(t, json.Unmarshal([]byte(stdout), &minted))
	chain := decodeCertificates(t, minted.CertsPEM)
	verifiedID, _, err := x509svid.Verify(chain, trusted)
	require.NoError(t, err)
	require.Equal(t, id, verifiedID.String())
	require.WithinDuration(t, time.Now().Add(10*time.Minute), chain[0].NotAfter, time.Minute)

	dir := t.TempDir()
	_, stderr, code = runCLI(t, socket, "", "svid", "mint", "x509", "--spiffe-id", id,
		"--write", dir)
	require.Equal(t, 0, code, stderr)
	written, err := x509svid.Load(filepath.Join(dir, "svid.pem"), filepath.Join(dir, "key.pem"))
	require.NoError(t, err)
	require.Equal(t, id, written.ID.String())

	stdout, stderr, code = runCLI(t, socket, "", "svid", "mint", "jwt", "--spiffe-id", id,
		"--audience", "org-b", "--audience", "org-c", "--ttl", "1m")
	require.Equal(t, 0, code, stderr)
	for _, audience := range []string{"org-b", "org-c"} {
		parsed, err := jwtsvid.ParseAndValidate(strings.TrimSpace(stdout), trusted,
			[]string{audience})
		require.NoError(t, err, audience)
		require.Equal(t, id, parsed.ID.String())
	}
}

func decodeCertificates(t *testing.T, data string) []*x509.Certificate {
	t.Helper()
	var certs []*x509.Certificate
	rest := []byte(data)
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		require.NoError(t, err)
		certs = append(certs, cert)
	}
	require.NotEmpty(t, certs)
	return certs
}

func TestSVIDMintForeignIDOnRealNode(t *testing.T) {
	socket, _ := startRealNode(t)

	stdout, stderr, code := runCLI(t, socket, "", "svid", "mint", "jwt", "--spiffe-id",
		"spiffe://org-b.test/agents/planner", "--audience", "org-b")
	require.Equal(t, 1, code)
	require.Empty(t, stdout)
	require.Equal(t, "Error: SPIFFE ID spiffe://org-b.test/agents/planner is not in the "+
		"local trust domain example.org; this node signs only for example.org\n", stderr)
}

func TestSVIDMintFlagErrors(t *testing.T) {
	node, socket := startFakeNode(t)
	tests := []struct {
		name  string
		args  []string
		want  string
		usage bool
	}{
		{"x509 without spiffe id", []string{"svid", "mint", "x509"},
			"missing --spiffe-id: pass the ID to mint, such as spiffe://example.org/workload",
			false},
		{"jwt without spiffe id", []string{"svid", "mint", "jwt", "--audience", "a"},
			"missing --spiffe-id: pass the ID to mint, such as spiffe://example.org/workload",
			false},
		{"x509 with invalid id", []string{"svid", "mint", "x509", "--spiffe-id",
			"example.org/w"}, `invalid --spiffe-id: bundle: invalid SPIFFE ID "example.org/w": ` +
			"scheme is missing or invalid; expected spiffe://<trust domain>/<path>", false},
		{"jwt without audience", []string{"svid", "mint", "jwt", "--spiffe-id",
			"spiffe://example.org/w"}, "missing --audience: pass at least one audience of " +
			"the token, such as --audience my-service", false},
		{"jwt with fractional ttl", []string{"svid", "mint", "jwt", "--spiffe-id",
			"spiffe://example.org/w", "--audience", "a", "--ttl", "1500ms"},
			"invalid --ttl 1.5s: pass a whole number of seconds, such as 1h, or 0 for the " +
				"node's default", false},
		{"x509 with negative ttl", []string{"svid", "mint", "x509", "--spiffe-id",
			"spiffe://example.org/w", "--ttl", "-1m"}, "invalid --ttl -1m0s: pass a whole " +
			"number of seconds, such as 1h, or 0 for the node's default", false},
		{"unknown svid kind", []string{"svid", "mint", "wit"}, `unknown command "wit" for ` +
			`"bundlex svid mint"; run 'bundlex svid mint --help' to list the commands`, true},
		{"positional argument", []string{"svid", "mint", "x509", "spiffe://example.org/w"},
			`unexpected argument "spiffe://example.org/w": "bundlex svid mint x509" takes ` +
				"only flags", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := runCLI(t, socket, "", tt.args...)
			require.Equal(t, 1, code)
			require.Empty(t, stdout)
			require.True(t, strings.HasPrefix(stderr, "Error: "+tt.want+"\n"), stderr)
			if tt.usage {
				require.Contains(t, stderr, "\nUsage:\n  bundlex svid mint")
				return
			}
			require.NotContains(t, stderr, "Usage:")
			require.Contains(t, stderr, "\nRun 'bundlex svid mint ")
		})
	}
	require.Equal(t, 0, node.callCount(), "flag errors must not reach the node")
}

func TestSVIDMintMatchesSPIREStyleAliases(t *testing.T) {
	_, socket := startFakeNode(t)
	tests := []struct {
		name  string
		svid  []string
		alias []string
		flags []string
	}{
		{"x509 printed", []string{"svid", "mint", "x509"}, []string{"x509", "mint"},
			[]string{"--spiffe-id", "spiffe://example.org/w", "--ttl", "1h"}},
		{"jwt printed", []string{"svid", "mint", "jwt"}, []string{"jwt", "mint"},
			[]string{"--spiffe-id", "spiffe://example.org/w", "--audience", "a"}},
		{"jwt as json", []string{"--output", "json", "svid", "mint", "jwt"},
			[]string{"--output", "json", "jwt", "mint"},
			[]string{"--spiffe-id", "spiffe://example.org/w", "--audience", "a", "--ttl", "5m"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svidOut, stderr, code := runCLI(t, socket, "", append(tt.svid, tt.flags...)...)
			require.Equal(t, 0, code, stderr)
			aliasOut, stderr, code := runCLI(t, socket, "", append(tt.alias, tt.flags...)...)
			require.Equal(t, 0, code, stderr)
			require.NotEmpty(t, svidOut)
			require.Equal(t, aliasOut, svidOut)
		})
	}
}

func TestSVIDMintHelpNamesPolicy(t *testing.T) {
	tests := []struct {
		kind   string
		maxTTL string
	}{
		{"x509", "authority.x509_svid_max_ttl"},
		{"jwt", "authority.jwt_svid_max_ttl"},
	}
	for _, tt := range tests {
		t.Run(tt.kind+" help", func(t *testing.T) {
			stdout, stderr, code := runCLI(t, filepath.Join(os.TempDir(), "unused.sock"), "",
				"svid", "mint", tt.kind, "--help")
			require.Equal(t, 0, code, stderr)
			require.Contains(t, stdout, "authority.mint_allowed_id_prefixes")
			require.Contains(t, stdout, tt.maxTTL)
			require.Contains(t, stdout, "bundlex svid mint "+tt.kind+" --spiffe-id")
		})
	}
}

func TestSVIDMintRejectsNodeIdentities(t *testing.T) {
	socket, _ := startRealNode(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"x509 endpoint ID", []string{"svid", "mint", "x509", "--spiffe-id",
			"spiffe://example.org/bundlex"}, "Error: authority: reserved SPIFFE ID: " +
			"spiffe://example.org/bundlex is the SPIFFE ID of this node's bundle endpoint, " +
			"which peers require from its https_spiffe endpoint, so it is never minted; use " +
			"an ID of a workload, such as spiffe://example.org/workload\n"},
		{"jwt endpoint ID", []string{"svid", "mint", "jwt", "--spiffe-id",
			"spiffe://example.org/bundlex", "--audience", "b"}, "Error: authority: reserved " +
			"SPIFFE ID: spiffe://example.org/bundlex is the SPIFFE ID of this node's bundle " +
			"endpoint"},
		{"x509 reserved path", []string{"x509", "mint", "--spiffe-id",
			"spiffe://example.org/bundlex/node-2"}, "Error: authority: reserved SPIFFE ID: " +
			"spiffe://example.org/bundlex/node-2 is under spiffe://example.org/bundlex, the " +
			"path that bundlex keeps for its own identities, so it is never minted; use an ID " +
			"outside that path, such as spiffe://example.org/workload\n"},
		{"jwt trust domain ID", []string{"svid", "mint", "jwt", "--spiffe-id",
			"spiffe://example.org", "--audience", "b"}, "Error: authority: SPIFFE ID " +
			"spiffe://example.org has no path; an SVID needs a workload path such as " +
			"spiffe://example.org/workload\n"},
		{"x509 trust domain ID", []string{"svid", "mint", "x509", "--spiffe-id",
			"spiffe://example.org"}, "Error: authority: SPIFFE ID spiffe://example.org has " +
			"no path; an SVID needs a workload path such as spiffe://example.org/workload\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := runCLI(t, socket, "", tt.args...)
			require.Equal(t, 1, code)
			require.Empty(t, stdout)
			require.True(t, strings.HasPrefix(stderr, tt.want), stderr)
		})
	}
}
