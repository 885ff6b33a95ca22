package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bundlex/bundlex/config"
	"github.com/bundlex/bundlex/internal/admin"
)

// TestServerRejectsStaticPrefixAtStart starts `bundlex server` with a static
// relationship whose ID prefix is outside the peer's trust domain. The node
// would never store it, so the configuration is rejected before anything runs.
func TestServerRejectsStaticPrefixAtStart(t *testing.T) {
	dir := t.TempDir()
	configFile := filepath.Join(dir, "bundlex.yaml")
	content := fmt.Sprintf(`trust_domain: org-b.test
node_name: node-1
data_dir: %s
health:
  address: ""
bundle_endpoint:
  address: 127.0.0.1:0
federation:
  trust_domains:
    org-a.test:
      bundle_endpoint_url: https://127.0.0.1:1/
      profile: https_web
      allowed_id_prefixes: spiffe://org-b.test/x
`, filepath.Join(dir, "data"))
	require.NoError(t, os.WriteFile(configFile, []byte(content), 0o600))

	// A node that starts would run until the context ends, so the deadline
	// turns that failure into a result.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, []string{"server", "--config", configFile}, strings.NewReader(""),
		&stdout, &stderr)
	require.Equal(t, 1, code, stderr.String())
	require.Equal(t, "Error: config: federation.trust_domains[\"org-a.test\"]."+
		"allowed_id_prefixes: invalid value \"spiffe://org-b.test/x\": it is not in trust "+
		"domain org-a.test; start it with spiffe://org-a.test/\n", stderr.String())
	require.NoDirExists(t, filepath.Join(dir, "data"), "nothing may run before the check")
}

// TestStaticRelationshipRejectedAtRunTime configures a relationship whose
// endpoint ID is in a third trust domain without a known bundle. Only the
// leader can find that out. The node must still publish its bundle, and store
// the relationship once the missing bundle is set.
func TestStaticRelationshipRejectedAtRunTime(t *testing.T) {
	socket, _ := startRealNodeWith(t, func(cfg *config.Config) {
		cfg.Federation.TrustDomains = map[string]config.Relationship{
			"org-c.test": {
				BundleEndpointURL: "https://127.0.0.1:1/",
				Profile:           config.ProfileHTTPSSPIFFE,
				EndpointSPIFFEID:  "spiffe://org-b.test/bundlex",
			},
		}
	})
	require.True(t, showLocalBundle(t, socket).HasSequence)
	_, stderr, code := runCLI(t, socket, "", "federation", "show", "--trust-domain",
		"org-c.test")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "no federation relationship with trust domain org-c.test")

	peer := string(marshalTestBundle(t, newTestBundle(t, "org-b.test", 1)))
	_, stderr, code = runCLI(t, socket, peer, "bundle", "set", "--id", "org-b.test",
		"--path", "-")
	require.Equal(t, 0, code, stderr)
	require.Eventually(t, func() bool {
		stdout, _, code := runCLI(t, socket, "", "federation", "show", "--trust-domain",
			"org-c.test")
		return code == 0 && strings.Contains(stdout, "Defined in              : "+
			"configuration file\n")
	}, time.Minute, 100*time.Millisecond, "the retried relationship was not stored")
}

// TestAllowedIDPrefixesOnRealNode sets prefixes through both flag spellings and
// through the admin API, which apply the same checks and drop duplicates.
func TestAllowedIDPrefixesOnRealNode(t *testing.T) {
	socket, endpointURL := startRealNode(t)
	_, stderr, code := runCLI(t, socket, "", "federation", "create", "--trust-domain",
		"org-c.test", "--bundle-endpoint-url", endpointURL, "--profile", "https_web",
		"--allowed-id-prefix", "spiffe://org-c.test/agents/",
		"--allowed-id-prefixes", "spiffe://org-c.test/tools, spiffe://org-c.test/agents/",
		"--allowed-id-prefix", "spiffe://org-c.test/tools")
	require.Equal(t, 0, code, stderr)
	want := []string{"spiffe://org-c.test/agents/", "spiffe://org-c.test/tools"}
	client := admin.NewClient(socket, 30*time.Second)
	rel, err := client.Relationship(context.Background(), "org-c.test")
	require.NoError(t, err)
	require.Equal(t, want, rel.AllowedIDPrefixes)

	// The admin API applies the same checks as the CLI.
	tests := []struct {
		name     string
		prefixes []string
		want     string
	}{
		{"empty prefix", []string{""}, `invalid ID prefix "": it is empty`},
		{"empty segment", []string{"spiffe://org-c.test/a//b"}, `invalid ID prefix ` +
			`"spiffe://org-c.test/a//b": path cannot contain empty segments`},
		{"other trust domain", []string{"spiffe://org-a.test/x"}, `invalid ID prefix ` +
			`"spiffe://org-a.test/x": it is not in trust domain org-c.test`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := client.UpdateRelationship(context.Background(), "org-c.test",
				admin.RelationshipRequest{AllowedIDPrefixes: tt.prefixes})
			var apiErr *admin.APIError
			require.ErrorAs(t, err, &apiErr)
			require.Equal(t, admin.CodeInvalidArgument, apiErr.Code)
			require.Contains(t, apiErr.Message, tt.want)
		})
	}
	rel, err = client.UpdateRelationship(context.Background(), "org-c.test",
		admin.RelationshipRequest{AllowedIDPrefixes: []string{"spiffe://org-c.test/x",
			"spiffe://org-c.test/x"}})
	require.NoError(t, err)
	require.Equal(t, []string{"spiffe://org-c.test/x"}, rel.AllowedIDPrefixes)
}
