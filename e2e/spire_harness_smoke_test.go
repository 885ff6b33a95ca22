package e2e

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/federation"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/stretchr/testify/require"
)

// smokeFetchTimeout bounds one bundle fetch or TLS handshake in the smoke test.
const smokeFetchTimeout = 30 * time.Second

// TestSPIREHarness proves the harness against real SPIRE Servers: the bundle
// from the CLI, the bundle endpoint, minted SVIDs and both federation profiles.
func TestSPIREHarness(t *testing.T) {
	const (
		refreshHint = 7 * time.Second
		caTTL       = 2 * time.Hour
		svidTTL     = 30 * time.Minute
	)
	spire := startSPIRE(t, SPIREOptions{
		TrustDomain: "spire.test",
		RefreshHint: refreshHint,
		CATTL:       caTTL,
		X509SVIDTTL: svidTTL,
	})
	td := spire.TrustDomain()

	shownBundle, err := spiffebundle.Parse(td, spire.BundleSPIFFE(t))
	require.NoError(t, err, "parse `bundle show -format spiffe`")
	require.NotEmpty(t, shownBundle.X509Authorities(), "shown bundle has no X.509 authorities")
	require.NotEmpty(t, shownBundle.JWTAuthorities(), "shown bundle has no JWT authorities")

	// SPIFFE Federation 5.2.2: the endpoint presents an X509-SVID with the
	// configured ID, verified against the bundle supplied out of band.
	ctx, cancel := context.WithTimeout(context.Background(), smokeFetchTimeout)
	defer cancel()
	servedBundle, err := federation.FetchBundle(ctx, td, spire.EndpointURL(),
		federation.WithSPIFFEAuth(shownBundle, spire.EndpointID()))
	require.NoError(t, err, "fetch bundle from %s", spire.EndpointURL())

	t.Run("PEM bundle matches SPIFFE bundle", func(t *testing.T) {
		pemCerts := parsePEMCerts(t, spire.BundlePEM(t))
		require.True(t, certsEqual(pemCerts, shownBundle.X509Authorities()))
	})
	t.Run("CA lives for ca_ttl", func(t *testing.T) {
		ca := shownBundle.X509Authorities()[0]
		require.WithinDuration(t, time.Now().Add(caTTL), ca.NotAfter, time.Minute)
	})
	t.Run("endpoint serves shown keys", func(t *testing.T) {
		requireSameKeys(t, shownBundle, servedBundle)
	})
	t.Run("endpoint serves refresh hint", func(t *testing.T) {
		hint, ok := servedBundle.RefreshHint()
		require.True(t, ok, "served bundle has no spiffe_refresh_hint")
		require.Equal(t, refreshHint, hint)
	})
	t.Run("endpoint serves shown sequence", func(t *testing.T) {
		// SPIRE 1.13.3 stores spiffe_sequence with the bundle and serves it as is.
		want, ok := shownBundle.SequenceNumber()
		require.True(t, ok, "`bundle show` printed no spiffe_sequence")
		got, ok := servedBundle.SequenceNumber()
		require.True(t, ok, "served bundle has no spiffe_sequence")
		require.Equal(t, want, got)
	})
	t.Run("endpoint presents server SVID", func(t *testing.T) {
		require.Equal(t, spire.EndpointID(), endpointPeerID(t, spire, shownBundle))
	})
	t.Run("endpoint rejects wrong ID", func(t *testing.T) {
		wrongID := spiffeid.RequireFromSegments(td, "not", "the", "endpoint")
		ctx, cancel := context.WithTimeout(context.Background(), smokeFetchTimeout)
		defer cancel()
		_, err := federation.FetchBundle(ctx, td, spire.EndpointURL(),
			federation.WithSPIFFEAuth(shownBundle, wrongID))
		require.Error(t, err)
	})
	t.Run("minted X509-SVID verifies", func(t *testing.T) {
		testMintedX509SVID(t, spire, servedBundle, svidTTL)
	})
	t.Run("minted JWT-SVID validates", func(t *testing.T) {
		id := spiffeid.RequireFromSegments(td, "workload", "jwt")
		token := spire.MintJWT(t, id.String(), "bundlex-e2e")

		svid, err := jwtsvid.ParseAndValidate(token, servedBundle, []string{"bundlex-e2e"})
		require.NoError(t, err)
		require.Equal(t, id, svid.ID)

		_, err = jwtsvid.ParseAndValidate(token, servedBundle, []string{"other-audience"})
		require.Error(t, err, "a token for another audience must not validate")
	})
	t.Run("peer SPIRE fetches bundle", func(t *testing.T) {
		testSPIREFederation(t, spire, servedBundle)
	})
}

// testMintedX509SVID mints one X509-SVID with an explicit TTL and one with the
// server's default_x509_svid_ttl, and verifies both against bundle.
func testMintedX509SVID(t *testing.T, spire *spireServer, bundle *spiffebundle.Bundle,
	defaultTTL time.Duration) {
	id := spiffeid.RequireFromSegments(spire.TrustDomain(), "workload", "x509")
	const ttl = 10 * time.Minute
	certsPEM, keyPEM := spire.MintX509(t, id.String(), ttl)
	_, err := tls.X509KeyPair(certsPEM, keyPEM)
	require.NoError(t, err, "minted key does not match the minted certificate")

	certs := parsePEMCerts(t, certsPEM)
	verifiedID, _, err := x509svid.Verify(certs, bundle)
	require.NoError(t, err)
	require.Equal(t, id, verifiedID)
	require.WithinDuration(t, time.Now().Add(ttl), certs[0].NotAfter, time.Minute)

	other := spiffebundle.FromX509Authorities(spire.TrustDomain(), selfSignedCA(t))
	_, _, err = x509svid.Verify(certs, other)
	require.Error(t, err, "an SVID must not verify against an unrelated CA")

	defaultCertsPEM, _ := spire.MintX509(t, id.String(), 0)
	defaultCerts := parsePEMCerts(t, defaultCertsPEM)
	_, _, err = x509svid.Verify(defaultCerts, bundle)
	require.NoError(t, err)
	require.WithinDuration(t, time.Now().Add(defaultTTL), defaultCerts[0].NotAfter, time.Minute)
}

// testSPIREFederation starts a second SPIRE Server that fetches the first one's
// bundle three ways: a CLI relationship with https_spiffe, a CLI relationship
// with https_web and a static relationship from server.conf with https_web.
func testSPIREFederation(t *testing.T, spire *spireServer, want *spiffebundle.Bundle) {
	document := spire.BundleSPIFFE(t)
	web := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(document)
	}))
	t.Cleanup(web.Close)
	webRoots := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: web.Certificate().Raw})

	peer := startSPIRE(t, SPIREOptions{
		TrustDomain: "peer.test",
		Federation: []SPIREFederatesWith{{
			TrustDomain: "static-web.test", BundleEndpointURL: web.URL, Profile: profileHTTPSWeb,
		}},
		WebRootCAsPEM: webRoots,
	})

	tests := []struct {
		name        string
		trustDomain string
		create      func(t *testing.T)
	}{
		{"https_spiffe from CLI", spire.TrustDomain().Name(), func(t *testing.T) {
			bootstrap := writeBundleFile(t, spire.TrustDomain(), document)
			peer.FederationCreate(t, spire.TrustDomain().Name(), spire.EndpointURL(),
				profileHTTPSSPIFFE, spire.EndpointID().String(), bootstrap)
		}},
		{"https_web from CLI", "web.test", func(t *testing.T) {
			peer.FederationCreate(t, "web.test", web.URL, profileHTTPSWeb, "", "")
		}},
		{"https_web from config", "static-web.test", func(*testing.T) {}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.create(t)
			peer.FederationRefresh(t, tc.trustDomain)
			td := spiffeid.RequireTrustDomainFromString(tc.trustDomain)
			stored, err := spiffebundle.Parse(td, peer.BundleList(t, tc.trustDomain))
			require.NoError(t, err, "parse `bundle list` output for %s", tc.trustDomain)
			requireSameKeys(t, want, stored)
		})
	}
}

// endpointPeerID completes a TLS handshake with the bundle endpoint, accepting
// any SVID of the trust domain, and returns the SPIFFE ID of the leaf certificate.
func endpointPeerID(t *testing.T, spire *spireServer, bundle *spiffebundle.Bundle) spiffeid.ID {
	dialer := &tls.Dialer{Config: tlsconfig.TLSClientConfig(bundle, tlsconfig.AuthorizeAny())}
	ctx, cancel := context.WithTimeout(context.Background(), smokeFetchTimeout)
	defer cancel()
	conn, err := dialer.DialContext(ctx, "tcp", spire.endpointAddress())
	require.NoError(t, err)
	defer conn.Close()
	peerCerts := conn.(*tls.Conn).ConnectionState().PeerCertificates
	require.NotEmpty(t, peerCerts)
	id, err := x509svid.IDFromCert(peerCerts[0])
	require.NoError(t, err)
	return id
}

func parsePEMCerts(t *testing.T, data []byte) []*x509.Certificate {
	var certs []*x509.Certificate
	for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
		require.Equal(t, "CERTIFICATE", block.Type)
		cert, err := x509.ParseCertificate(block.Bytes)
		require.NoError(t, err)
		certs = append(certs, cert)
	}
	require.NotEmpty(t, certs, "no PEM certificates in %q", data)
	return certs
}

// requireSameKeys compares the X.509 and JWT authorities of two bundles and
// ignores their trust domains, refresh hints and sequence numbers.
func requireSameKeys(t *testing.T, want, got *spiffebundle.Bundle) {
	require.True(t, certsEqual(want.X509Authorities(), got.X509Authorities()),
		"X.509 authorities differ")
	require.Len(t, got.JWTAuthorities(), len(want.JWTAuthorities()))
	for keyID, wantKey := range want.JWTAuthorities() {
		gotKey, ok := got.FindJWTAuthority(keyID)
		require.True(t, ok, "JWT authority %q is missing", keyID)
		comparable, ok := wantKey.(interface{ Equal(crypto.PublicKey) bool })
		require.True(t, ok, "JWT authority %q has key type %T without Equal", keyID, wantKey)
		require.True(t, comparable.Equal(gotKey), "JWT authority %q differs", keyID)
	}
}

func certsEqual(a, b []*x509.Certificate) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Equal(b[i]) {
			return false
		}
	}
	return true
}

// selfSignedCA returns a CA certificate that has signed nothing.
func selfSignedCA(t *testing.T) []*x509.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	template := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return []*x509.Certificate{cert}
}
