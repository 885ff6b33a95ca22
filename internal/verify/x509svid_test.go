package verify

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/stretchr/testify/require"

	"github.com/bundlex/bundlex/bundle"
)

func TestVerifyX509SVIDAccepts(t *testing.T) {
	f := newFixture(t)
	leaf := f.orgB.ca.leaf(t, f.orgB.id("/billing/api"))
	result, err := f.verifier.VerifyX509SVID([]*x509.Certificate{leaf})
	require.NoError(t, err)
	require.Equal(t, "spiffe://org-b.test/billing/api", result.SPIFFEID)
	require.Equal(t, "org-b.test", result.TrustDomain)
	require.Equal(t, leaf.NotAfter.UTC(), result.ExpiresAt)
	require.Nil(t, result.Claims)

	// The intermediate expires before the leaf, so it bounds ExpiresAt.
	intermediateEnd := time.Now().Add(30 * time.Minute).Truncate(time.Second)
	intermediate := f.orgA.ca.intermediate(t, certSpec{uris: []string{"spiffe://org-a.test"},
		notAfter: intermediateEnd})
	agent := intermediate.leaf(t, f.orgA.id("/agents/planner"))
	result, err = f.verifier.VerifyX509SVID([]*x509.Certificate{agent, intermediate.cert})
	require.NoError(t, err)
	require.Equal(t, "spiffe://org-a.test/agents/planner", result.SPIFFEID)
	require.Equal(t, "org-a.test", result.TrustDomain)
	require.Equal(t, intermediateEnd.UTC(), result.ExpiresAt)
}

func TestVerifyX509SVIDRejects(t *testing.T) {
	f := newFixture(t)
	orgC := newOrg(t, "org-c.test")
	agent := f.orgA.id("/agents/planner")
	past := time.Now().Add(-2 * time.Hour)
	expiredIntermediate := f.orgA.ca.intermediate(t, certSpec{notBefore: past,
		notAfter: past.Add(time.Hour)})
	leafOf := func(spec certSpec) *x509.Certificate {
		cert, _ := f.orgA.ca.issue(t, spec)
		return cert
	}
	tests := []struct {
		name      string
		chain     []*x509.Certificate
		code      string
		fragments []string
	}{
		{"empty chain", nil, CodeMalformed, []string{"empty"}},
		{"leaf in unknown trust domain",
			[]*x509.Certificate{orgC.ca.leaf(t, orgC.id("/svc"))}, CodeUnknownTrustDomain,
			[]string{`"org-c.test"`}},
		{"leaf signed by other domain",
			[]*x509.Certificate{f.orgB.ca.leaf(t, agent)}, CodeBadSignature,
			[]string{agent, `"org-a.test"`}},
		{"CA certificate as leaf",
			[]*x509.Certificate{leafOf(certSpec{uris: []string{agent}, isCA: true})},
			CodeMalformed, []string{"CA certificate"}},
		{"leaf with keyCertSign",
			[]*x509.Certificate{leafOf(certSpec{uris: []string{agent},
				keyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign})},
			CodeMalformed, []string{"keyCertSign"}},
		{"leaf without digitalSignature",
			[]*x509.Certificate{leafOf(certSpec{uris: []string{agent},
				keyUsage: x509.KeyUsageKeyEncipherment})},
			CodeMalformed, []string{"digitalSignature"}},
		{"expired leaf",
			[]*x509.Certificate{leafOf(certSpec{uris: []string{agent}, notBefore: past,
				notAfter: past.Add(time.Hour)})}, CodeExpired, []string{agent, "expired at"}},
		{"leaf not yet valid",
			[]*x509.Certificate{leafOf(certSpec{uris: []string{agent},
				notBefore: time.Now().Add(time.Hour)})}, CodeNotYetValid, []string{"valid from"}},
		{"expired intermediate",
			[]*x509.Certificate{expiredIntermediate.leaf(t, agent), expiredIntermediate.cert},
			CodeExpired, nil},
		{"two URI SANs",
			[]*x509.Certificate{leafOf(certSpec{uris: []string{agent,
				f.orgA.id("/agents/other")}})}, CodeMalformed, []string{"2 URI SANs"}},
		{"no URI SAN", []*x509.Certificate{leafOf(certSpec{})}, CodeMalformed,
			[]string{"no URI SAN"}},
		{"ID without path",
			[]*x509.Certificate{leafOf(certSpec{uris: []string{"spiffe://org-a.test"}})},
			CodeMalformed, []string{"no path"}},
		{"URI SAN not SPIFFE",
			[]*x509.Certificate{leafOf(certSpec{uris: []string{"https://org-a.test/x"}})},
			CodeMalformed, []string{"not a valid SPIFFE ID"}},
		{"outside allowed prefixes",
			[]*x509.Certificate{f.orgA.ca.leaf(t, f.orgA.id("/admin"))}, CodeIDNotAllowed,
			[]string{"spiffe://org-a.test/admin"}},
		{"relationship without bundle",
			[]*x509.Certificate{orgC.ca.leaf(t, "spiffe://org-d.test/svc")}, CodeNoBundle,
			[]string{"fetched"}},
		{"empty federated bundle",
			[]*x509.Certificate{orgC.ca.leaf(t, "spiffe://org-e.test/svc")}, CodeNoBundle,
			[]string{"no x509-svid CA"}},
		{"chain too long",
			make([]*x509.Certificate, MaxChainLength+1), CodeMalformed, []string{"maximum"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			result, err := f.verifier.VerifyX509SVID(tt.chain)
			require.Nil(t, result)
			requireCode(t, err, tt.code, tt.fragments...)
		})
	}
}

// TestVerifyX509SVIDNamesCertificates checks that errors name a certificate by
// its position in the chain and its SPIFFE ID or serial number, because many
// X509-SVIDs have an empty subject.
func TestVerifyX509SVIDNamesCertificates(t *testing.T) {
	f := newFixture(t)
	agent := f.orgA.id("/agents/planner")
	past := time.Now().Add(-2 * time.Hour)
	expired := certSpec{notBefore: past, notAfter: past.Add(time.Hour), emptySubject: true}
	leafOf := func(ca *testCA, spec certSpec) *x509.Certificate {
		cert, _ := ca.issue(t, spec)
		return cert
	}
	withURIs := func(spec certSpec, uris ...string) certSpec {
		spec.uris = uris
		return spec
	}
	intermediateWithID := f.orgA.ca.intermediate(t, withURIs(expired, "spiffe://org-a.test"))
	intermediateWithoutID := f.orgA.ca.intermediate(t, expired)
	bareLeaf := leafOf(f.orgA.ca, certSpec{emptySubject: true})

	// A trust domain whose only CA has expired.
	oldKey := newKey(t)
	oldRoot := createCert(t, withURIs(certSpec{isCA: true, notBefore: past,
		notAfter: past.Add(time.Hour), emptySubject: true}, "spiffe://org-f.test"),
		&oldKey.PublicKey, nil, oldKey)
	oldCA := &testCA{cert: oldRoot, key: oldKey}
	orgF := spiffeid.RequireTrustDomainFromString("org-f.test")
	oldBundle := bundle.New(orgF)
	oldBundle.X509Authorities = []*x509.Certificate{oldRoot}
	f.trust.Federated[orgF] = oldBundle

	tests := []struct {
		name      string
		chain     []*x509.Certificate
		code      string
		fragments []string
	}{
		{"expired leaf", []*x509.Certificate{leafOf(f.orgA.ca, withURIs(expired, agent))},
			CodeExpired, []string{"certificate 1 (leaf, " + agent + ") in the chain of"}},
		{"leaf not yet valid", []*x509.Certificate{leafOf(f.orgA.ca, certSpec{
			uris: []string{agent}, notBefore: time.Now().Add(time.Hour), emptySubject: true})},
			CodeNotYetValid, []string{"certificate 1 (leaf, " + agent + ") in the chain of"}},
		{"expired intermediate with ID", []*x509.Certificate{
			intermediateWithID.leaf(t, agent), intermediateWithID.cert}, CodeExpired,
			[]string{"certificate 2 (spiffe://org-a.test) in the chain of " + agent}},
		{"expired intermediate without ID", []*x509.Certificate{
			intermediateWithoutID.leaf(t, agent), intermediateWithoutID.cert}, CodeExpired,
			[]string{fmt.Sprintf("certificate 2 (serial number %#x)",
				intermediateWithoutID.cert.SerialNumber)}},
		{"expired bundle CA", []*x509.Certificate{oldCA.leaf(t, "spiffe://org-f.test/svc")},
			CodeExpired, []string{`x509-svid CA certificate (spiffe://org-f.test) of trust ` +
				`domain "org-f.test" in the chain of spiffe://org-f.test/svc`}},
		{"missing second certificate", []*x509.Certificate{bareLeaf, nil}, CodeMalformed,
			[]string{"certificate 2 of the chain is missing"}},
		{"leaf without URI SAN", []*x509.Certificate{bareLeaf}, CodeMalformed,
			[]string{fmt.Sprintf("leaf certificate (serial number %#x) has no URI SAN",
				bareLeaf.SerialNumber)}},
		{"leaf with two URI SANs", []*x509.Certificate{leafOf(f.orgA.ca,
			certSpec{uris: []string{agent, "https://org-a.test/x"}, emptySubject: true})},
			CodeMalformed, []string{"has 2 URI SANs (" + agent + ", https://org-a.test/x)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			result, err := f.verifier.VerifyX509SVID(tt.chain)
			require.Nil(t, result)
			requireCode(t, err, tt.code, tt.fragments...)
			require.NotContains(t, err.Error(), `""`)
		})
	}
}

func encodePEM(certs ...*x509.Certificate) string {
	var out strings.Builder
	for _, cert := range certs {
		_ = pem.Encode(&out, &pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
	}
	return out.String()
}

func TestParseCertificateChainPEM(t *testing.T) {
	f := newFixture(t)
	intermediate := f.orgA.ca.intermediate(t, certSpec{})
	leaf := intermediate.leaf(t, f.orgA.id("/agents/planner"))

	chain, err := ParseCertificateChainPEM([]byte("leaf then CA\n" +
		encodePEM(leaf, intermediate.cert) + "\n"))
	require.NoError(t, err)
	require.Len(t, chain, 2)
	require.Equal(t, leaf.Raw, chain[0].Raw)
	require.Equal(t, intermediate.cert.Raw, chain[1].Raw)

	tests := []struct {
		name     string
		input    string
		fragment string
	}{
		{"no PEM block", "hello", "no PEM CERTIFICATE block"},
		{"private key block", encodePEM(leaf) +
			"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
			`"PRIVATE KEY"`},
		{"certificate not DER", "-----BEGIN CERTIFICATE-----\nAAAA\n" +
			"-----END CERTIFICATE-----\n", "does not parse"},
		{"trailing data", encodePEM(leaf) + "trailing", "not a PEM block"},
		{"too many certificates", strings.Repeat(encodePEM(leaf), MaxChainLength+1),
			"more than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseCertificateChainPEM([]byte(tt.input))
			requireCode(t, err, CodeMalformed, tt.fragment)
		})
	}
}
