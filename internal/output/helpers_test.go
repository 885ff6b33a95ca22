package output

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bundlex/bundlex/bundle"
	"github.com/bundlex/bundlex/internal/testutil"
	"github.com/bundlex/bundlex/internal/workload"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/stretchr/testify/require"
)

// waitTimeout is the generous deadline for conditions that a healthy run meets
// in milliseconds.
const waitTimeout = 30 * time.Second

var (
	tdLocal = spiffeid.RequireTrustDomainFromString("org-a.test")
	tdB     = spiffeid.RequireTrustDomainFromString("org-b.test")
	tdC     = spiffeid.RequireTrustDomainFromString("org-c.test")
)

// newCA returns a self-signed EC P-256 CA certificate for td.
func newCA(t *testing.T, td spiffeid.TrustDomain) *x509.Certificate {
	return testutil.NewCA(t, td)
}

func newJWTAuthority(t *testing.T, kid string) bundle.JWTAuthority {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return bundle.JWTAuthority{KeyID: kid, PublicKey: &key.PublicKey}
}

func newBundle(td spiffeid.TrustDomain, certs []*x509.Certificate,
	keys ...bundle.JWTAuthority) *bundle.Bundle {
	b := bundle.New(td)
	b.X509Authorities = append(b.X509Authorities, certs...)
	b.JWTAuthorities = append(b.JWTAuthorities, keys...)
	return b
}

// fixture is a local trust domain federated with org-b.test, which publishes a
// CA, and org-c.test, which publishes JWT keys only.
type fixture struct {
	localCAs []*x509.Certificate
	caB      *x509.Certificate
	snapshot *workload.Snapshot
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{
		localCAs: []*x509.Certificate{newCA(t, tdLocal), newCA(t, tdLocal)},
		caB:      newCA(t, tdB),
	}
	local := newBundle(tdLocal, f.localCAs, newJWTAuthority(t, "a1"))
	local.Sequence, local.HasSequence = 4, true
	local.RefreshHint = 5 * time.Minute
	f.snapshot = &workload.Snapshot{
		Version: 1,
		Local:   local,
		Federated: map[spiffeid.TrustDomain]*bundle.Bundle{
			tdB: newBundle(tdB, []*x509.Certificate{f.caB}),
			tdC: newBundle(tdC, nil, newJWTAuthority(t, "c1")),
		},
	}
	return f
}

// withFederated returns a copy of s with a higher version whose federated
// bundles edit has changed.
func withFederated(s *workload.Snapshot,
	edit func(map[spiffeid.TrustDomain]*bundle.Bundle)) *workload.Snapshot {
	out := &workload.Snapshot{Version: s.Version + 1, Local: s.Local,
		Federated: make(map[spiffeid.TrustDomain]*bundle.Bundle)}
	for td, b := range s.Federated {
		out.Federated[td] = b
	}
	edit(out.Federated)
	return out
}

// outputDir returns a directory path under t.TempDir that does not exist yet,
// so that the writer creates it.
func outputDir(t *testing.T) string {
	return filepath.Join(t.TempDir(), "bundles")
}

func readPEM(t *testing.T, dir string, td spiffeid.TrustDomain) *bundle.Bundle {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, td.Name()+PEMSuffix))
	require.NoError(t, err)
	b, err := bundle.ParsePEM(td, data)
	require.NoError(t, err)
	return b
}
