package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bundlex/bundlex/internal/admin"
)

// showRelationship returns the relationship with td as `federation show --output
// json` prints it.
func showRelationship(t *testing.T, n *bxNode, td string) admin.Relationship {
	t.Helper()
	var rel admin.Relationship
	out := n.cli("federation", "show", "--trust-domain", td, "--output", "json")
	require.NoError(t, json.Unmarshal([]byte(out), &rel), out)
	return rel
}

// storedBundle returns the bundle of td as `bundle list --id --output json`
// prints it.
func storedBundle(t *testing.T, n *bxNode, td string) admin.Bundle {
	t.Helper()
	var b admin.Bundle
	out := n.cli("bundle", "list", "--id", td, "--output", "json")
	require.NoError(t, json.Unmarshal([]byte(out), &b), out)
	return b
}

// storedState returns `bundle list` and `federation list` as JSON, to compare
// what a node stores before and after a rejected request.
func storedState(t *testing.T, n *bxNode) (bundles, relationships string) {
	t.Helper()
	return n.cli("bundle", "list", "--output", "json"),
		n.cli("federation", "list", "--output", "json")
}

// requireStateUnchanged checks that n still stores exactly what storedState
// returned before.
func requireStateUnchanged(t *testing.T, n *bxNode, bundles, relationships string) {
	t.Helper()
	nowBundles, nowRelationships := storedState(t, n)
	require.JSONEq(t, bundles, nowBundles, "stored bundles changed")
	require.JSONEq(t, relationships, nowRelationships, "stored relationships changed")
}

// waitForFetched waits until n stores td's bundle at seq, fetched from its peer.
func waitForFetched(t *testing.T, n *bxNode, td string, seq uint64) {
	t.Helper()
	waitFor(t, time.Minute, fmt.Sprintf("%s to fetch %s sequence %d", n.name, td, seq),
		func() error {
			b, err := n.client().Bundle(context.Background(), td)
			if err != nil {
				return err
			}
			if b.Sequence != seq || b.Source != "fetched" {
				return fmt.Errorf("stored sequence %d from %s", b.Sequence, b.Source)
			}
			return nil
		})
}

// waitForFetchError waits until the status of n's relationship with td records
// a fetch error that contains want, and returns the relationship.
func waitForFetchError(t *testing.T, n *bxNode, td, want string) admin.Relationship {
	t.Helper()
	var rel admin.Relationship
	waitFor(t, time.Minute, fmt.Sprintf("%s to record a fetch error for %s", n.name, td),
		func() error {
			var err error
			rel, err = n.client().Relationship(context.Background(), td)
			if err != nil {
				return err
			}
			if !strings.Contains(rel.Status.LastError, want) {
				return fmt.Errorf("last error %q does not contain %q", rel.Status.LastError, want)
			}
			return nil
		})
	return rel
}

// createWebRelationship creates an https_web relationship on n for td, trusting
// the CA certificates in caPath.
func createWebRelationship(n *bxNode, td, url, caPath string) {
	n.t.Helper()
	n.cli("federation", "create", "--trust-domain", td, "--bundle-endpoint-url", url,
		"--profile", "https_web", "--ca-file", caPath)
}

// invalidName is a trust domain name or SPIFFE ID that SPIFFE-ID 2 rejects, with
// the part of the error message that names the reason.
type invalidName struct {
	label  string
	value  string
	reason string
}

var invalidTrustDomains = []invalidName{
	{"uppercase", "Org-B.test", "trust domain characters are limited"},
	{"port", "org-b.test:8443", "trust domain characters are limited"},
	{"userinfo", "user@org-b.test", "trust domain characters are limited"},
	{"percent encoding", "org%2Db.test", "trust domain characters are limited"},
	{"over 255 bytes", strings.Repeat("a", 252) + ".test", "257 bytes, the maximum is 255"},
}

var invalidIDs = []invalidName{
	{"empty segment", "spiffe://org-b.test/a//b", "path cannot contain empty segments"},
	{"dot-dot segment", "spiffe://org-b.test/a/../b", "path cannot contain dot segments"},
	{"query", "spiffe://org-b.test/a?x=1", "path segment characters are limited"},
	{"trailing slash", "spiffe://org-b.test/a/", "path cannot have a trailing slash"},
	{"over 2048 bytes", "spiffe://org-b.test/" + strings.Repeat("a", 2029),
		"2049 bytes, the maximum is 2048"},
}

// withQuoted returns want plus the value as an error message quotes it, unless
// the value is so long that the message truncates it.
func withQuoted(value string, want ...string) []string {
	if len(value) > 255 {
		return want
	}
	return append(want, fmt.Sprintf("%q", value))
}

// cliRow is one rejected CLI invocation and the parts its error must contain.
type cliRow struct {
	name string
	args []string
	want []string
}

// TestInvalidInputChangesNothing sends names, URLs, relationships and bundle files
// that bundlex must reject through the CLI and the admin API. The node stores one
// fetched bundle and one operator bundle, and each request must fail with a clear
// error and leave both unchanged.
func TestInvalidInputChangesNothing(t *testing.T) {
	webCA := newTestCA(t, "org-b web CA")
	peer := startFakePeer(t, webCA)
	// The hint of 300 seconds keeps the relationship's status still during the test.
	peer.serve(http.StatusOK, bundleDocument(t, "org-b.test", 4, 300*time.Second,
		newTestCA(t, "org-b authority")))
	node := startNode(t, nodeOptions{trustDomain: "org-a.test"})
	caPath := node.writeFile("org-b-ca.pem", webCA.certPEM)
	createWebRelationship(node, "org-b.test", peer.url(), caPath)
	waitForFetched(t, node, "org-b.test", 4)
	goodPath := node.writeFile("org-x.json", bundleDocument(t, "org-x.test", 2, 0,
		newTestCA(t, "org-x authority")))
	node.cli("bundle", "set", "--id", "org-x.test", "--path", goodPath)
	bundles, relationships := storedState(t, node)

	var rows []cliRow
	for _, name := range invalidTrustDomains {
		want := withQuoted(name.value, "invalid --trust-domain", name.reason)
		rows = append(rows, cliRow{"create rejects " + name.label, []string{"federation",
			"create", "--trust-domain", name.value, "--bundle-endpoint-url", peer.url(),
			"--profile", "https_web", "--ca-file", caPath}, want})
		want = withQuoted(name.value, "invalid --id", name.reason)
		rows = append(rows,
			cliRow{"bundle set rejects " + name.label,
				[]string{"bundle", "set", "--id", name.value, "--path", goodPath}, want},
			cliRow{"bundle list rejects " + name.label,
				[]string{"bundle", "list", "--id", name.value}, want})
	}
	for _, id := range invalidIDs {
		want := withQuoted(id.value, "invalid --endpoint-spiffe-id", id.reason)
		rows = append(rows, cliRow{"create rejects ID with " + id.label, []string{
			"federation", "create", "--trust-domain", "org-c.test", "--bundle-endpoint-url",
			peer.url(), "--profile", "https_spiffe", "--endpoint-spiffe-id", id.value}, want})
		want = withQuoted(id.value, "invalid --id", id.reason)
		rows = append(rows,
			cliRow{"bundle set rejects ID with " + id.label,
				[]string{"bundle", "set", "--id", id.value, "--path", goodPath}, want},
			cliRow{"bundle list rejects ID with " + id.label,
				[]string{"bundle", "list", "--id", id.value}, want})
	}
	rows = append(rows, relationshipRows(peer.url())...)
	rows = append(rows, bundleFileRows(node, peer.url())...)

	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			stdout, stderr, err := node.cliResult(row.args...)
			require.Error(t, err, "stdout: %s", stdout)
			for _, want := range row.want {
				require.Contains(t, stderr, want)
			}
			requireStateUnchanged(t, node, bundles, relationships)
		})
	}
	testAdminAPIRejections(t, node, peer.url(), bundles, relationships)
}

// relationshipRows are relationships that SPIFFE Federation 5 rules out: endpoint
// URLs that are not plain https, and https_spiffe endpoints that nothing can
// authenticate.
func relationshipRows(url string) []cliRow {
	create := func(args ...string) []string {
		return append([]string{"federation", "create", "--trust-domain", "org-c.test"}, args...)
	}
	httpURL := strings.Replace(url, "https://", "http://", 1)
	userinfoURL := strings.Replace(url, "https://", "https://operator:secret@", 1)
	return []cliRow{
		{"create rejects http URL",
			create("--bundle-endpoint-url", httpURL, "--profile", "https_web"),
			[]string{"invalid --bundle-endpoint-url", httpURL, "the scheme must be https"}},
		{"create rejects URL with userinfo",
			create("--bundle-endpoint-url", userinfoURL, "--profile", "https_web"),
			[]string{"invalid --bundle-endpoint-url", "carries no user information"}},
		{"self-serving endpoint without bootstrap",
			create("--bundle-endpoint-url", url, "--profile", "https_spiffe",
				"--endpoint-spiffe-id", "spiffe://org-c.test/bundlex"),
			[]string{"spiffe://org-c.test/bundlex", "a bootstrap bundle is needed",
				"--bundle-path"}},
		{"endpoint in unknown trust domain",
			create("--bundle-endpoint-url", url, "--profile", "https_spiffe",
				"--endpoint-spiffe-id", "spiffe://org-z.test/bundlex"),
			[]string{"spiffe://org-z.test/bundlex", "no bundle of org-z.test is known"}},
	}
}

// bundleFileRows are bundle files that are no SPIFFE bundle, given as a bootstrap
// bundle and as an operator's override of the stored org-x.test bundle.
func bundleFileRows(node *bxNode, url string) []cliRow {
	files := []struct {
		label  string
		data   string
		format string
		reason string
	}{
		{"garbage", "this is not a bundle", "spiffe", "not a JSON object"},
		{"JSON without keys", `{"spiffe_sequence": 3}`, "spiffe",
			`member "keys" is missing or not an array`},
		{"PEM garbage", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
			"pem", "PEM certificate 1"},
	}
	var rows []cliRow
	for i, file := range files {
		path := node.writeFile(fmt.Sprintf("malformed-%d", i), []byte(file.data))
		rows = append(rows,
			cliRow{"create rejects " + file.label + " bootstrap", []string{"federation",
				"create", "--trust-domain", "org-c.test", "--bundle-endpoint-url", url,
				"--profile", "https_spiffe", "--endpoint-spiffe-id", "spiffe://org-c.test/bundlex",
				"--bundle-path", path, "--bundle-format", file.format},
				[]string{"invalid bundle for org-c.test", file.reason}},
			cliRow{"bundle set rejects " + file.label, []string{"bundle", "set", "--id",
				"org-x.test", "--path", path, "--format", file.format},
				[]string{"invalid bundle for org-x.test", file.reason}})
	}
	return rows
}

// testAdminAPIRejections sends the invalid names and URLs to the admin API
// directly, because the CLI checks them before any request reaches the node.
func testAdminAPIRejections(t *testing.T, node *bxNode, url, bundles, relationships string) {
	ctx := context.Background()
	client := node.client()
	requireInvalid := func(t *testing.T, err error, want string) {
		t.Helper()
		var apiErr *admin.APIError
		require.ErrorAs(t, err, &apiErr)
		require.Equal(t, admin.CodeInvalidArgument, apiErr.Code, apiErr.Message)
		require.Contains(t, apiErr.Message, want)
	}
	setReq := admin.SetBundleRequest{Format: "spiffe", Data: `{"keys": []}`}
	for _, name := range invalidTrustDomains {
		t.Run("API rejects trust domain "+name.label, func(t *testing.T) {
			_, err := client.CreateRelationship(ctx, admin.RelationshipRequest{
				TrustDomain: name.value, BundleEndpointURL: url, Profile: "https_web"})
			requireInvalid(t, err, name.reason)
			_, err = client.SetBundle(ctx, name.value, setReq)
			requireInvalid(t, err, name.reason)
			_, err = client.Bundle(ctx, name.value)
			requireInvalid(t, err, name.reason)
			requireStateUnchanged(t, node, bundles, relationships)
		})
	}
	for _, id := range invalidIDs {
		t.Run("API rejects ID with "+id.label, func(t *testing.T) {
			_, err := client.CreateRelationship(ctx, admin.RelationshipRequest{
				TrustDomain: "org-c.test", BundleEndpointURL: url, Profile: "https_spiffe",
				EndpointSPIFFEID: id.value})
			requireInvalid(t, err, id.reason)
			_, err = client.SetBundle(ctx, id.value, setReq)
			requireInvalid(t, err, id.reason)
			_, err = client.Bundle(ctx, id.value)
			requireInvalid(t, err, id.reason)
			requireStateUnchanged(t, node, bundles, relationships)
		})
	}
	urls := []invalidName{
		{"http URL", strings.Replace(url, "https://", "http://", 1),
			"a bundle endpoint must use https"},
		{"URL with userinfo", strings.Replace(url, "https://", "https://operator@", 1),
			"contains userinfo"},
	}
	for _, u := range urls {
		t.Run("API rejects "+u.label, func(t *testing.T) {
			_, err := client.CreateRelationship(ctx, admin.RelationshipRequest{
				TrustDomain: "org-c.test", BundleEndpointURL: u.value, Profile: "https_web"})
			requireInvalid(t, err, u.reason)
			requireStateUnchanged(t, node, bundles, relationships)
		})
	}
}

// TestPeerErrorsKeepLastGoodBundle has a peer respond with an error status, a
// malformed document, a document over federation.max_bundle_size and a rollback
// of spiffe_sequence. Each fetch must fail with a status error that names the
// problem, and the last good bundle must stay stored (SPIFFE Federation 4.2).
func TestPeerErrorsKeepLastGoodBundle(t *testing.T) {
	const maxBundleSize = 4096
	webCA := newTestCA(t, "org-b web CA")
	authority := newTestCA(t, "org-b authority")
	peer := startFakePeer(t, webCA)
	peer.serve(http.StatusOK, bundleDocument(t, "org-b.test", 5, 300*time.Second, authority))
	node := startNode(t, nodeOptions{trustDomain: "org-a.test",
		extraYAML: fmt.Sprintf("  max_bundle_size: %d\n", maxBundleSize)})
	createWebRelationship(node, "org-b.test", peer.url(),
		node.writeFile("org-b-ca.pem", webCA.certPEM))
	waitForFetched(t, node, "org-b.test", 5)
	lastGood := storedBundle(t, node, "org-b.test")

	// A valid document with an extra member that makes it too large, so that only
	// the size can be the reason to reject it.
	var padded map[string]any
	require.NoError(t, json.Unmarshal(bundleDocument(t, "org-b.test", 6, 0, authority), &padded))
	padded["padding"] = strings.Repeat("x", 2*maxBundleSize)
	oversized, err := json.Marshal(padded)
	require.NoError(t, err)

	rows := []struct {
		name   string
		status int
		body   []byte
		want   string
	}{
		{"peer answers 503", http.StatusServiceUnavailable, []byte(`{"error": "maintenance"}`),
			"responded with 503 Service Unavailable; expected 200 OK"},
		{"peer answers malformed JSON", http.StatusOK, []byte(`{"keys": [`),
			"not a JSON object"},
		{"bundle over size limit", http.StatusOK, oversized,
			fmt.Sprintf("larger than the limit of %d bytes", maxBundleSize)},
		{"sequence lower than fetched", http.StatusOK,
			bundleDocument(t, "org-b.test", 4, 0, newTestCA(t, "org-b old authority")),
			"peer served spiffe_sequence 4 for org-b.test, lower than the last fetched 5"},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			peer.serve(row.status, row.body)
			// A retry that the poller started before the switch may still record the
			// previous response, so the refresh is repeated until it reports this one.
			waitFor(t, time.Minute, "a refresh that fails with "+row.want, func() error {
				_, stderr, err := node.cliResult("federation", "refresh",
					"--trust-domain", "org-b.test")
				if err == nil {
					return fmt.Errorf("refresh succeeded")
				}
				if !strings.Contains(stderr, row.want) {
					return fmt.Errorf("refresh failed with %q", stderr)
				}
				return nil
			})
			rel := showRelationship(t, node, "org-b.test")
			require.Contains(t, rel.Status.LastError, row.want)
			require.Positive(t, rel.Status.ConsecutiveFailures)
			require.True(t, rel.Status.HasBundle)
			require.Equal(t, lastGood.Sequence, rel.Status.StoredSequence)
			stored := storedBundle(t, node, "org-b.test")
			require.Equal(t, lastGood.Sequence, stored.Sequence)
			require.Equal(t, "fetched", stored.Source)
			require.JSONEq(t, string(lastGood.Document), string(stored.Document))
		})
	}

	// A valid response with a higher sequence is stored again and clears the error.
	peer.serve(http.StatusOK, bundleDocument(t, "org-b.test", 6, 300*time.Second, authority))
	node.cli("federation", "refresh", "--trust-domain", "org-b.test")
	waitForFetched(t, node, "org-b.test", 6)
	rel := showRelationship(t, node, "org-b.test")
	require.Empty(t, rel.Status.LastError)
	require.Zero(t, rel.Status.ConsecutiveFailures)
}

// TestPeerBundleSkipsUnusableKeys serves a bundle with one good key and four keys
// that a consumer must ignore one by one (SPIFFE Trust Domain and Bundle 4.1.3,
// X509-SVID 6.2, JWT-SVID 6.2). The node stores the good key, counts the others
// in the relationship's status and logs a warning for each.
func TestPeerBundleSkipsUnusableKeys(t *testing.T) {
	webCA := newTestCA(t, "org-b web CA")
	authority := newTestCA(t, "org-b authority")
	var doc map[string]any
	require.NoError(t, json.Unmarshal(bundleDocument(t, "org-b.test", 3, 300*time.Second,
		authority), &doc))

	unknownUse := ecPublicJWK(t)
	unknownUse["use"], unknownUse["kid"] = "e2e-unknown-use", "key-unknown-use"
	unknownType := map[string]any{"kty": "E2E", "use": "jwt-svid", "kid": "key-unknown-kty"}
	withoutX5C := ecPublicJWK(t)
	withoutX5C["use"] = "x509-svid"
	withoutKID := ecPublicJWK(t)
	withoutKID["use"] = "jwt-svid"
	keys := doc["keys"].([]any)
	doc["keys"] = append(keys, unknownUse, unknownType, withoutX5C, withoutKID)
	served, err := json.Marshal(doc)
	require.NoError(t, err)

	peer := startFakePeer(t, webCA)
	peer.serve(http.StatusOK, served)
	node := startNode(t, nodeOptions{trustDomain: "org-a.test"})
	createWebRelationship(node, "org-b.test", peer.url(),
		node.writeFile("org-b-ca.pem", webCA.certPEM))
	waitForFetched(t, node, "org-b.test", 3)

	rel := showRelationship(t, node, "org-b.test")
	require.Empty(t, rel.Status.LastError)
	require.Equal(t, 4, rel.Status.SkippedKeys)
	require.Equal(t, 1, rel.Status.X509Keys)
	require.Zero(t, rel.Status.JWTKeys)
	stored := storedBundle(t, node, "org-b.test")
	require.Equal(t, 1, stored.X509Keys)
	require.Zero(t, stored.JWTKeys)
	require.Equal(t, string(authority.certPEM), stored.PEM)

	// The poller logs the warnings before it stores the bundle.
	var warnings []string
	for _, line := range strings.Split(node.logs(), "\n") {
		if strings.Contains(line, "skipped unusable key in peer bundle") {
			warnings = append(warnings, line)
		}
	}
	for _, reason := range []string{`unknown use \"e2e-unknown-use\"`,
		`unknown kty \"E2E\"`, `x509-svid key without \"x5c\"`,
		`jwt-svid key without \"kid\"`} {
		require.True(t, containsAny(warnings, reason), "no warning with %s in:\n%s",
			reason, strings.Join(warnings, "\n"))
	}
}

func containsAny(lines []string, substr string) bool {
	for _, line := range lines {
		if strings.Contains(line, substr) {
			return true
		}
	}
	return false
}
