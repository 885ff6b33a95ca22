package bundle

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"sort"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Key uses defined by SPIFFE Trust Domain and Bundle 4.2.2. They are
// case-sensitive.
const (
	UseX509SVID = "x509-svid"
	UseJWTSVID  = "jwt-svid"
	UseWITSVID  = "wit-svid"
)

// Bundle is the trusted key material of one trust domain. The zero value of
// Sequence with HasSequence false means the document had no spiffe_sequence.
type Bundle struct {
	TrustDomain spiffeid.TrustDomain
	Sequence    uint64
	HasSequence bool
	// RefreshHint is the advertised polling interval; zero when the document has none.
	RefreshHint time.Duration

	X509Authorities []*x509.Certificate
	JWTAuthorities  []JWTAuthority
	// WITAuthorities are keys for WIMSE workload identity tokens. bundlex carries
	// them so that re-encoding a peer's bundle never drops them.
	WITAuthorities []JWTAuthority
}

// JWTAuthority is a public key that verifies tokens, with its key ID.
type JWTAuthority struct {
	KeyID     string
	PublicKey crypto.PublicKey
}

// New returns an empty bundle for td. An empty bundle is legal and makes every
// SVID of the trust domain invalid (SPIFFE Trust Domain and Bundle 4.1.3).
func New(td spiffeid.TrustDomain) *Bundle {
	return &Bundle{TrustDomain: td}
}

// Normalize sorts the authorities and drops exact duplicates, so that two bundles
// with the same keys encode to the same bytes whatever order they were built in.
func (b *Bundle) Normalize() {
	sort.SliceStable(b.X509Authorities, func(i, j int) bool {
		return bytes.Compare(b.X509Authorities[i].Raw, b.X509Authorities[j].Raw) < 0
	})
	unique := b.X509Authorities[:0]
	for i, cert := range b.X509Authorities {
		if i > 0 && bytes.Equal(cert.Raw, b.X509Authorities[i-1].Raw) {
			continue
		}
		unique = append(unique, cert)
	}
	b.X509Authorities = unique
	sortByKeyID(b.JWTAuthorities)
	sortByKeyID(b.WITAuthorities)
}

func sortByKeyID(keys []JWTAuthority) {
	sort.SliceStable(keys, func(i, j int) bool { return keys[i].KeyID < keys[j].KeyID })
}

// KeyCount returns the number of usable keys of each use.
func (b *Bundle) KeyCount() (x509Keys, jwtKeys int) {
	return len(b.X509Authorities), len(b.JWTAuthorities)
}

// Clone returns a copy that shares the immutable certificates and public keys.
func (b *Bundle) Clone() *Bundle {
	out := *b
	out.X509Authorities = append([]*x509.Certificate(nil), b.X509Authorities...)
	out.JWTAuthorities = append([]JWTAuthority(nil), b.JWTAuthorities...)
	out.WITAuthorities = append([]JWTAuthority(nil), b.WITAuthorities...)
	return &out
}

// SameKeys reports whether a and b hold the same key material, ignoring sequence
// and refresh hint. It is the test for "content changed" (SPIFFE Trust Domain and
// Bundle 4.1.1: the sequence changes with every content change).
func SameKeys(a, b *Bundle) bool {
	ka, err := encodeKeys(a)
	if err != nil {
		return false
	}
	kb, err := encodeKeys(b)
	if err != nil {
		return false
	}
	return bytes.Equal(ka, kb)
}
