package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bundlex/bundlex/config"
	"github.com/bundlex/bundlex/internal/admin"
	"github.com/bundlex/bundlex/internal/node"
)

// startRealNode starts a single-node cluster in-process, with the bundle
// endpoint on a free loopback port, and returns its admin socket and the URL of
// its bundle endpoint once `bundlex healthcheck` passes.
func startRealNode(t *testing.T) (string, string) {
	t.Helper()
	return startRealNodeWith(t, func(*config.Config) {})
}

// startRealNodeWith starts a node as startRealNode does, with the configuration
// changed by modify.
func startRealNodeWith(t *testing.T, modify func(*config.Config)) (string, string) {
	t.Helper()
	cfg, err := config.Dev("example.org")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(cfg.DataDir) })
	cfg.BundleEndpoint.Address = "127.0.0.1:0"
	cfg.Health.Address = ""
	modify(cfg)
	cfg.FillDerived()
	require.NoError(t, cfg.Validate())

	n, err := node.New(cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	require.NoError(t, n.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		require.NoError(t, n.Stop(ctx))
	})

	socket := cfg.Admin.SocketPath
	require.Eventually(t, func() bool {
		_, _, code := runCLI(t, socket, "", "healthcheck")
		return code == 0
	}, 30*time.Second, 50*time.Millisecond, "the node did not become ready")
	return socket, n.EndpointURL()
}

// showLocalBundle returns the local bundle through `bundle show --output json`.
func showLocalBundle(t *testing.T, socket string) admin.Bundle {
	t.Helper()
	stdout, stderr, code := runCLI(t, socket, "", "--output", "json", "bundle", "show")
	require.Equal(t, 0, code, stderr)
	var b admin.Bundle
	require.NoError(t, json.Unmarshal([]byte(stdout), &b))
	return b
}

func TestBundleCommandsOnRealNode(t *testing.T) {
	socket, _ := startRealNode(t)

	local := showLocalBundle(t, socket)
	require.Equal(t, "example.org", local.TrustDomain)
	require.True(t, local.HasSequence)
	require.Positive(t, local.X509Keys)

	stdout, stderr, code := runCLI(t, socket, "", "bundle", "show", "--format", "pem")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, local.PEM, stdout)

	stdout, stderr, code = runCLI(t, socket, "", "authority", "rotate")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "Prepared new signing keys for example.org.")
	require.Equal(t, local.Sequence+1, showLocalBundle(t, socket).Sequence)

	peer := newTestBundle(t, "org-b.test", 6)
	doc := string(marshalTestBundle(t, peer))
	_, stderr, code = runCLI(t, socket, doc, "bundle", "set", "--id", "org-b.test",
		"--path", "-")
	require.Equal(t, 0, code, stderr)
	stdout, stderr, code = runCLI(t, socket, "", "bundle", "list", "--id",
		"spiffe://org-b.test", "--format", "pem")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, pemOf(peer.X509Authorities...), stdout)

	_, stderr, code = runCLI(t, socket, "", "bundle", "delete", "--id", "org-b.test")
	require.Equal(t, 0, code, stderr)
	stdout, stderr, code = runCLI(t, socket, "", "bundle", "list")
	require.Equal(t, 0, code, stderr)
	require.NotContains(t, stdout, "org-b.test")
}

func TestFederationCommandsOnRealNode(t *testing.T) {
	socket, endpointURL := startRealNode(t)

	// The node's own endpoint presents an X509-SVID, not a Web PKI certificate,
	// so an https_web fetch from it must fail verification.
	_, stderr, code := runCLI(t, socket, "", "federation", "create", "--trust-domain",
		"org-c.test", "--bundle-endpoint-url", endpointURL, "--profile", "https_web")
	require.Equal(t, 0, code, stderr)

	stdout, stderr, code := runCLI(t, socket, "", "federation", "list")
	require.Equal(t, 0, code, stderr)
	require.Regexp(t, `\norg-c\.test +https_web +`+endpointURL+` +- +never +`, stdout)

	_, stderr, code = runCLI(t, socket, "", "federation", "refresh", "--trust-domain",
		"org-c.test")
	require.Equal(t, 1, code)
	require.True(t, strings.HasPrefix(stderr, "Error: refresh of org-c.test failed: "+
		"federation: fetch bundle for org-c.test from "+endpointURL), stderr)

	stdout, stderr, code = runCLI(t, socket, "", "federation", "show", "--trust-domain",
		"org-c.test")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "State                   : failing\n")
	require.NotContains(t, stdout, "Last error              : none\n")

	// Allowed ID prefixes can be set and cleared again.
	stdout, stderr, code = runCLI(t, socket, "", "federation", "update", "--trust-domain",
		"org-c.test", "--allowed-id-prefix", "spiffe://org-c.test/agents/")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "spiffe://org-c.test/agents/")
	_, stderr, code = runCLI(t, socket, "", "federation", "update", "--trust-domain",
		"org-c.test", "--clear-allowed-id-prefixes", "--allowed-id-prefix",
		"spiffe://org-c.test/x")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "contradict each other")
	stdout, stderr, code = runCLI(t, socket, "", "federation", "update", "--trust-domain",
		"org-c.test", "--clear-allowed-id-prefixes")
	require.Equal(t, 0, code, stderr)
	require.NotContains(t, stdout, "spiffe://org-c.test/agents/")
	require.Contains(t, stdout, "any SPIFFE ID of the trust domain")

	_, stderr, code = runCLI(t, socket, "", "federation", "delete", "--trust-domain",
		"org-c.test")
	require.Equal(t, 0, code, stderr)
	_, stderr, code = runCLI(t, socket, "", "federation", "show", "--trust-domain",
		"org-c.test")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "org-c.test")
}
