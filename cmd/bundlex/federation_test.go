package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bundlex/bundlex/internal/admin"
)

// writeTestFile writes content into a new file of a temporary directory.
func writeTestFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

func TestFederationCreateReadsFiles(t *testing.T) {
	node, socket := startFakeNode(t)
	peer := newTestBundle(t, "org-b.test", 8)
	bundlePEM := pemOf(peer.X509Authorities...)
	caPEM := pemOf(newTestCA(t, "web-ca.test"))
	bundlePath := writeTestFile(t, "org-b.pem", bundlePEM)
	caPath := writeTestFile(t, "ca.pem", caPEM)

	stdout, stderr, code := runCLI(t, socket, "", "federation", "create",
		"--trust-domain", "spiffe://org-b.test", "--bundle-endpoint-url",
		"https://org-b.test:8443/bundle", "--profile", "https_web", "--bundle-path",
		bundlePath, "--bundle-format", "pem", "--ca-file", caPath,
		"--allowed-id-prefix", "spiffe://org-b.test/ns/a",
		"--allowed-id-prefix", "spiffe://org-b.test/ns/b")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, admin.RelationshipRequest{TrustDomain: "org-b.test",
		BundleEndpointURL: "https://org-b.test:8443/bundle", Profile: "https_web",
		CAPEM:             caPEM,
		AllowedIDPrefixes: []string{"spiffe://org-b.test/ns/a", "spiffe://org-b.test/ns/b"},
		Bootstrap:         bundlePEM, BootstrapFormat: "pem"}, node.lastRequest)
	require.Contains(t, stdout, "Created the federation relationship with org-b.test.\n\n")
	require.Contains(t, stdout, "Extra CA certificates   : yes\n")
	require.Contains(t, stdout, "Bundle source           : bootstrap\n")
}

func TestFederationCreateBundleFromStdin(t *testing.T) {
	node, socket := startFakeNode(t)
	doc := string(marshalTestBundle(t, newTestBundle(t, "org-b.test", 3)))

	stdout, stderr, code := runCLI(t, socket, doc, "--output", "json", "federation",
		"create", "--trust-domain", "org-b.test", "--bundle-endpoint-url",
		"https://org-b.test/", "--profile", "https_spiffe", "--endpoint-spiffe-id",
		"spiffe://org-b.test/bundlex", "--bundle-path", "-")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, doc, node.lastRequest.Bootstrap)
	require.Equal(t, "spiffe", node.lastRequest.BootstrapFormat)
	require.Empty(t, node.lastRequest.CAPEM)

	var got admin.Relationship
	require.NoError(t, json.Unmarshal([]byte(stdout), &got))
	require.Equal(t, "org-b.test", got.TrustDomain)
	require.Equal(t, "spiffe://org-b.test/bundlex", got.EndpointSPIFFEID)
	require.Equal(t, uint64(3), got.Status.StoredSequence)
}

func TestFederationCreateCAFileErrors(t *testing.T) {
	node, socket := startFakeNode(t)
	keyPath := writeTestFile(t, "key.pem",
		"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
	textPath := writeTestFile(t, "notes.txt", "not a certificate\n")
	badCertPath := writeTestFile(t, "bad.pem",
		"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")

	tests := []struct {
		name string
		path string
		want string
	}{
		{"private key block", keyPath, "Error: --ca-file " + keyPath +
			" contains a \"PRIVATE KEY\" PEM block; pass only CA certificates\n"},
		{"no PEM block", textPath, "Error: --ca-file " + textPath + " contains no PEM " +
			"certificate; pass CA certificates that start with -----BEGIN CERTIFICATE-----\n"},
		{"unparsable certificate", badCertPath, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, code := runCLI(t, socket, "", "federation", "create",
				"--trust-domain", "org-b.test", "--bundle-endpoint-url",
				"https://org-b.test/", "--profile", "https_web", "--ca-file", tt.path)
			require.Equal(t, 1, code)
			if tt.want != "" {
				require.Equal(t, tt.want, stderr)
			}
			require.Contains(t, stderr, "Error: --ca-file "+tt.path)
		})
	}
	require.Equal(t, 0, node.callCount())
}

func TestFederationCreateAlreadyExists(t *testing.T) {
	_, socket := startFakeNode(t)
	args := []string{"federation", "create", "--trust-domain", "org-b.test",
		"--bundle-endpoint-url", "https://org-b.test/", "--profile", "https_web"}

	_, stderr, code := runCLI(t, socket, "", args...)
	require.Equal(t, 0, code, stderr)

	stdout, stderr, code := runCLI(t, socket, "", args...)
	require.Equal(t, 1, code)
	require.Empty(t, stdout)
	require.Equal(t, "Error: a relationship with org-b.test already exists; "+
		"update or delete it\n", stderr)
}

func TestFederationUpdateSendsGivenFlags(t *testing.T) {
	node, socket := startFakeNode(t)
	node.relationships["org-b.test"] = admin.Relationship{TrustDomain: "org-b.test",
		BundleEndpointURL: "https://org-b.test/", Profile: "https_spiffe",
		EndpointSPIFFEID: "spiffe://org-b.test/bundlex"}

	stdout, stderr, code := runCLI(t, socket, "", "federation", "update",
		"--trust-domain", "org-b.test", "--bundle-endpoint-url", "https://org-b.test:9443/")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "org-b.test", node.lastUpdateTD)
	require.Equal(t, admin.RelationshipRequest{TrustDomain: "org-b.test",
		BundleEndpointURL: "https://org-b.test:9443/"}, node.lastRequest)
	require.Contains(t, stdout, "Updated the federation relationship with org-b.test.\n")
	require.Contains(t, stdout, "Bundle endpoint URL     : https://org-b.test:9443/\n")
	require.Contains(t, stdout, "Bundle endpoint profile : https_spiffe\n")
}

func TestFederationUpdateUnknownTrustDomain(t *testing.T) {
	_, socket := startFakeNode(t)

	_, stderr, code := runCLI(t, socket, "", "federation", "update",
		"--trust-domain", "org-x.test", "--profile", "https_web")
	require.Equal(t, 1, code)
	require.Equal(t, "Error: no relationship with org-x.test\n", stderr)
}

// addStatusRelationships stores three relationships, one in each state.
func addStatusRelationships(node *fakeNode) {
	node.relationships["org-ok.test"] = admin.Relationship{TrustDomain: "org-ok.test",
		BundleEndpointURL: "https://ok.test/", Profile: "https_web",
		Status: admin.PeerStatus{HasBundle: true, StoredSequence: 12,
			LastAttempt: fakeNow, LastSuccess: fakeNow}}
	node.relationships["org-down.test"] = admin.Relationship{TrustDomain: "org-down.test",
		BundleEndpointURL: "https://down.test/", Profile: "https_spiffe",
		EndpointSPIFFEID: "spiffe://org-down.test/bundlex",
		Status: admin.PeerStatus{HasBundle: true, StoredSequence: 3,
			LastSuccess: fakeNow.Add(-time.Hour), LastAttempt: fakeNow,
			ConsecutiveFailures: 4, LastError: "connection refused"}}
	node.relationships["org-new.test"] = admin.Relationship{TrustDomain: "org-new.test",
		BundleEndpointURL: "https://new.test/", Profile: "https_web"}
}

func TestFederationListTable(t *testing.T) {
	node, socket := startFakeNode(t)
	addStatusRelationships(node)

	stdout, stderr, code := runCLI(t, socket, "", "federation", "list")
	require.Equal(t, 0, code, stderr)
	want := "" +
		"TRUST DOMAIN   PROFILE       BUNDLE ENDPOINT URL  SEQUENCE  LAST SUCCESS          STATE\n" +
		"org-down.test  https_spiffe  https://down.test/   3         2026-03-01T11:00:00Z  failing\n" +
		"org-new.test   https_web     https://new.test/    -         never                 pending\n" +
		"org-ok.test    https_web     https://ok.test/     12        2026-03-01T12:00:00Z  ok\n"
	require.Equal(t, want, stdout)
}

func TestFederationListJSON(t *testing.T) {
	node, socket := startFakeNode(t)
	addStatusRelationships(node)

	stdout, stderr, code := runCLI(t, socket, "", "--output", "json", "federation", "list")
	require.Equal(t, 0, code, stderr)
	var got []admin.Relationship
	require.NoError(t, json.Unmarshal([]byte(stdout), &got))
	require.Len(t, got, 3)
	require.Equal(t, "org-down.test", got[0].TrustDomain)
	require.Equal(t, 4, got[0].Status.ConsecutiveFailures)
	require.Equal(t, "connection refused", got[0].Status.LastError)
}

func TestFederationShowBlock(t *testing.T) {
	node, socket := startFakeNode(t)
	node.relationships["org-b.test"] = admin.Relationship{TrustDomain: "org-b.test",
		BundleEndpointURL: "https://org-b.test/", Profile: "https_spiffe",
		EndpointSPIFFEID:  "spiffe://org-b.test/bundlex",
		AllowedIDPrefixes: []string{"spiffe://org-b.test/a", "spiffe://org-b.test/b"},
		Static:            true, CreatedAt: fakeNow.Add(-24 * time.Hour), UpdatedAt: fakeNow,
		Status: admin.PeerStatus{HasBundle: true, StoredSequence: 7, BundleSource: "fetched",
			LastAttempt: fakeNow, LastSuccess: fakeNow.Add(-time.Minute),
			LastChange: fakeNow.Add(-time.Hour), NextRefresh: fakeNow.Add(5 * time.Minute),
			LastError: "read: connection\nreset", ConsecutiveFailures: 1, X509Keys: 2,
			JWTKeys: 3, SkippedKeys: 1}}

	stdout, stderr, code := runCLI(t, socket, "", "federation", "show",
		"--trust-domain", "spiffe://org-b.test")
	require.Equal(t, 0, code, stderr)
	want := "" +
		"Trust domain            : org-b.test\n" +
		"Bundle endpoint URL     : https://org-b.test/\n" +
		"Bundle endpoint profile : https_spiffe\n" +
		"Endpoint SPIFFE ID      : spiffe://org-b.test/bundlex\n" +
		"Extra CA certificates   : no\n" +
		"Allowed ID prefixes     : spiffe://org-b.test/a, spiffe://org-b.test/b\n" +
		"Defined in              : configuration file\n" +
		"Created at              : 2026-02-28T12:00:00Z\n" +
		"Updated at              : 2026-03-01T12:00:00Z\n" +
		"State                   : failing\n" +
		"Bundle stored           : yes\n" +
		"Stored sequence         : 7\n" +
		"Bundle source           : fetched\n" +
		"X.509 authorities       : 2\n" +
		"JWT keys                : 3\n" +
		"Skipped keys            : 1\n" +
		"Last attempt            : 2026-03-01T12:00:00Z\n" +
		"Last success            : 2026-03-01T11:59:00Z\n" +
		"Last change             : 2026-03-01T11:00:00Z\n" +
		"Last error              : read: connection reset\n" +
		"Consecutive failures    : 1\n" +
		"Next refresh            : 2026-03-01T12:05:00Z\n"
	require.Equal(t, want, stdout)
}

func TestFederationShowNeverFetched(t *testing.T) {
	node, socket := startFakeNode(t)
	addStatusRelationships(node)

	stdout, stderr, code := runCLI(t, socket, "", "federation", "show",
		"--trust-domain", "org-new.test")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "Endpoint SPIFFE ID      : -\n")
	require.Contains(t, stdout, "Allowed ID prefixes     : any SPIFFE ID of the trust domain\n")
	require.Contains(t, stdout, "Defined in              : admin API\n")
	require.Contains(t, stdout, "State                   : pending\n")
	require.Contains(t, stdout, "Stored sequence         : -\n")
	require.Contains(t, stdout, "Last attempt            : never\n")
	require.Contains(t, stdout, "Last error              : none\n")
	require.Contains(t, stdout, "Next refresh            : not scheduled\n")
}

func TestFederationShowJSON(t *testing.T) {
	node, socket := startFakeNode(t)
	addStatusRelationships(node)

	stdout, stderr, code := runCLI(t, socket, "", "--output", "json", "federation", "show",
		"--trust-domain", "org-down.test")
	require.Equal(t, 0, code, stderr)
	var got admin.Relationship
	require.NoError(t, json.Unmarshal([]byte(stdout), &got))
	require.Equal(t, node.relationships["org-down.test"], got)
}

func TestFederationDelete(t *testing.T) {
	node, socket := startFakeNode(t)
	addStatusRelationships(node)
	node.bundles["org-ok.test"] = toAPIBundle(t, newTestBundle(t, "org-ok.test", 12), "fetched")

	stdout, stderr, code := runCLI(t, socket, "", "federation", "delete",
		"--trust-domain", "org-ok.test")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "Deleted the federation relationship with org-ok.test and its bundle.\n",
		stdout)
	require.NotContains(t, node.relationships, "org-ok.test")
	require.NotContains(t, node.bundles, "org-ok.test")

	stdout, stderr, code = runCLI(t, socket, "", "--output", "json", "federation", "delete",
		"--trust-domain", "org-new.test")
	require.Equal(t, 0, code, stderr)
	require.JSONEq(t, `{"trust_domain": "org-new.test", "deleted": true}`, stdout)
}

func TestFederationRefreshSucceeds(t *testing.T) {
	node, socket := startFakeNode(t)
	addStatusRelationships(node)

	stdout, stderr, code := runCLI(t, socket, "", "federation", "refresh",
		"--trust-domain", "org-new.test")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "Fetched the bundle of org-new.test.\n\n")
	require.Contains(t, stdout, "State                   : ok\n")
	require.Contains(t, stdout, "Next refresh            : 2026-03-01T12:05:00Z\n")
}

func TestFederationRefreshFails(t *testing.T) {
	node, socket := startFakeNode(t)
	node.relationships["org-b.test"] = admin.Relationship{TrustDomain: "org-b.test",
		BundleEndpointURL: "https://" + unreachableHost + "/", Profile: "https_web"}

	stdout, stderr, code := runCLI(t, socket, "", "federation", "refresh",
		"--trust-domain", "org-b.test")
	require.Equal(t, 1, code)
	require.Contains(t, stdout, "The last fetch of the bundle of org-b.test failed.\n\n")
	require.Contains(t, stdout, "Consecutive failures    : 1\n")
	require.Equal(t, "Error: refresh of org-b.test failed: federation: fetch bundle for "+
		"org-b.test: connection refused\n", stderr)
}
