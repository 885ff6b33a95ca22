package verify

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bundlex/bundlex/bundle"
	"github.com/go-jose/go-jose/v4"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/stretchr/testify/require"
)

// testCA is a certificate authority of one trust domain.
type testCA struct {
	cert *x509.Certificate
	key  crypto.Signer
}

// certSpec describes a certificate for issue; zero fields take usable defaults.
type certSpec struct {
	uris      []string
	ips       []net.IP
	notBefore time.Time
	notAfter  time.Time
	isCA      bool
	keyUsage  x509.KeyUsage
	// emptySubject leaves the subject without a common name or other attribute,
	// as SPIRE and other issuers of X509-SVIDs may do.
	emptySubject bool
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return key
}

// newTestCA returns a self-signed root CA for td with the trust domain's SPIFFE ID.
func newTestCA(t testing.TB, td string) *testCA {
	t.Helper()
	key := newKey(t)
	cert := createCert(t, certSpec{uris: []string{"spiffe://" + td}, isCA: true},
		&key.PublicKey, nil, key)
	return &testCA{cert: cert, key: key}
}

// issue signs a certificate for spec with the CA.
func (ca *testCA) issue(t testing.TB, spec certSpec) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key := newKey(t)
	return createCert(t, spec, &key.PublicKey, ca.cert, ca.key), key
}

// intermediate returns a CA signed by ca, for the same trust domain.
func (ca *testCA) intermediate(t testing.TB, spec certSpec) *testCA {
	t.Helper()
	spec.isCA = true
	cert, key := ca.issue(t, spec)
	return &testCA{cert: cert, key: key}
}

// leaf issues an X509-SVID for id with the usual leaf key usage.
func (ca *testCA) leaf(t testing.TB, id string) *x509.Certificate {
	t.Helper()
	cert, _ := ca.issue(t, certSpec{uris: []string{id}})
	return cert
}

func createCert(t testing.TB, spec certSpec, pub crypto.PublicKey, parent *x509.Certificate,
	signer crypto.Signer) *x509.Certificate {
	t.Helper()
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "verify test " + serial.String()},
		NotBefore:             spec.notBefore,
		NotAfter:              spec.notAfter,
		BasicConstraintsValid: true,
		IsCA:                  spec.isCA,
		KeyUsage:              spec.keyUsage,
		IPAddresses:           spec.ips,
	}
	if spec.emptySubject {
		tmpl.Subject = pkix.Name{}
	}
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore = time.Now().Add(-time.Hour)
	}
	if tmpl.NotAfter.IsZero() {
		tmpl.NotAfter = time.Now().Add(time.Hour)
	}
	if tmpl.KeyUsage == 0 {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		if spec.isCA {
			tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
		}
	}
	if !spec.isCA {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth,
			x509.ExtKeyUsageClientAuth}
	}
	for _, raw := range spec.uris {
		uri, err := url.Parse(raw)
		require.NoError(t, err)
		tmpl.URIs = append(tmpl.URIs, uri)
	}
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return cert
}

// org is the key material of one test trust domain: an X.509 CA and a JWT key.
type org struct {
	td     spiffeid.TrustDomain
	ca     *testCA
	jwtKey crypto.Signer
	kid    string
}

func newOrg(t testing.TB, name string) *org {
	t.Helper()
	return &org{
		td:     spiffeid.RequireTrustDomainFromString(name),
		ca:     newTestCA(t, name),
		jwtKey: newKey(t),
		kid:    name + "-jwt-1",
	}
}

// bundle returns the org's bundle with its CA and JWT key.
func (o *org) bundle() *bundle.Bundle {
	b := bundle.New(o.td)
	b.X509Authorities = []*x509.Certificate{o.ca.cert}
	b.JWTAuthorities = []bundle.JWTAuthority{{KeyID: o.kid, PublicKey: o.jwtKey.Public()}}
	return b
}

// id returns the SPIFFE ID of path in the org's trust domain.
func (o *org) id(path string) string {
	return "spiffe://" + o.td.Name() + path
}

// claims returns valid JWT-SVID claims for sub with audience "billing".
func claims(sub string, now time.Time) map[string]any {
	return map[string]any{
		"sub": sub,
		"aud": []string{"billing"},
		"exp": now.Add(5 * time.Minute).Unix(),
		"iat": now.Add(-time.Minute).Unix(),
	}
}

// tokenSpec describes a token for mint; a zero alg means ES256.
type tokenSpec struct {
	alg    jose.SignatureAlgorithm
	key    any
	kid    string
	claims map[string]any
	// headers are extra protected header parameters, such as "typ".
	headers map[jose.HeaderKey]any
}

func mint(t testing.TB, spec tokenSpec) string {
	t.Helper()
	alg := spec.alg
	if alg == "" {
		alg = jose.ES256
	}
	var signingKey any = spec.key
	if spec.kid != "" {
		signingKey = jose.JSONWebKey{Key: spec.key, KeyID: spec.kid}
	}
	opts := &jose.SignerOptions{ExtraHeaders: map[jose.HeaderKey]any{}}
	opts.WithType("JWT")
	for name, value := range spec.headers {
		opts.ExtraHeaders[name] = value
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: signingKey}, opts)
	require.NoError(t, err)
	payload, err := json.Marshal(spec.claims)
	require.NoError(t, err)
	jws, err := signer.Sign(payload)
	require.NoError(t, err)
	token, err := jws.CompactSerialize()
	require.NoError(t, err)
	return token
}

// mintOrg signs claims with the org's JWT key and kid.
func (o *org) mint(t testing.TB, claims map[string]any) string {
	t.Helper()
	return mint(t, tokenSpec{key: o.jwtKey, kid: o.kid, claims: claims})
}

// unsignedToken builds a token with alg "none", which go-jose cannot sign.
func unsignedToken(t testing.TB, claims map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	require.NoError(t, err)
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
	return header + "." + base64.RawURLEncoding.EncodeToString(payload) + "."
}

// fixture is a node of org-b.test that federates with org-a.test (limited to
// /agents/ and /agents) and a few trust domains in special states.
type fixture struct {
	now      time.Time
	orgA     *org
	orgB     *org
	trust    *Trust
	verifier *Verifier
}

var (
	tdWithoutBundle = spiffeid.RequireTrustDomainFromString("org-d.test")
	tdEmptyBundle   = spiffeid.RequireTrustDomainFromString("org-e.test")
)

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{now: time.Now().Truncate(time.Second),
		orgA: newOrg(t, "org-a.test"), orgB: newOrg(t, "org-b.test")}
	f.trust = &Trust{
		Local: f.orgB.bundle(),
		Federated: map[spiffeid.TrustDomain]*bundle.Bundle{
			f.orgA.td:       f.orgA.bundle(),
			tdWithoutBundle: nil,
			tdEmptyBundle:   bundle.New(tdEmptyBundle),
		},
		AllowedIDPrefixes: map[spiffeid.TrustDomain][]string{
			f.orgA.td: {"spiffe://org-a.test/agents/", "spiffe://org-a.test/tools"},
			// Ignored: the local trust domain has no prefix restriction.
			f.orgB.td: {"spiffe://org-b.test/nothing"},
		},
	}
	verifier, err := NewVerifier(TrustFunc(func() *Trust { return f.trust }),
		WithClock(func() time.Time { return f.now }))
	require.NoError(t, err)
	f.verifier = verifier
	return f
}

// requireCode checks that err is an *Error with code and that its message
// contains every fragment.
func requireCode(t *testing.T, err error, code string, fragments ...string) {
	t.Helper()
	require.Error(t, err)
	var verifyErr *Error
	require.ErrorAs(t, err, &verifyErr)
	require.Equal(t, code, verifyErr.Code, "message: %s", verifyErr.Message)
	for _, fragment := range fragments {
		require.Contains(t, verifyErr.Message, fragment)
	}
	require.True(t, strings.HasPrefix(err.Error(), "verify: "), err.Error())
}
