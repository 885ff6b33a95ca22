package bundle

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Format names a bundle encoding accepted by the CLI and the configuration.
type Format string

// Bundle encodings: the SPIFFE JWK Set, or PEM certificates (X.509 authorities only).
const (
	FormatSPIFFE Format = "spiffe"
	FormatPEM    Format = "pem"
)

// ParseFormat checks a format name given by an operator.
func ParseFormat(s string) (Format, error) {
	switch Format(s) {
	case FormatSPIFFE, FormatPEM:
		return Format(s), nil
	case "":
		return FormatSPIFFE, nil
	}
	return "", fmt.Errorf("bundle: invalid format %q: use spiffe or pem", s)
}

type document struct {
	Keys        []json.RawMessage `json:"keys"`
	RefreshHint *int64            `json:"spiffe_refresh_hint,omitempty"`
	Sequence    *uint64           `json:"spiffe_sequence,omitempty"`
}

// Marshal encodes b as a SPIFFE bundle document. The encoding is canonical: the
// same keys, sequence and hint always give the same bytes, so the bytes can serve
// as an ETag source and as the "content changed" test.
func Marshal(b *Bundle) ([]byte, error) {
	keys, err := encodeKeyList(b)
	if err != nil {
		return nil, err
	}
	doc := document{Keys: keys}
	if b.RefreshHint > 0 {
		hint := int64(b.RefreshHint / time.Second)
		doc.RefreshHint = &hint
	}
	if b.HasSequence {
		seq := b.Sequence
		doc.Sequence = &seq
	}
	return json.MarshalIndent(doc, "", "    ")
}

// encodeKeys returns the canonical encoding of the key list alone.
func encodeKeys(b *Bundle) ([]byte, error) {
	keys, err := encodeKeyList(b)
	if err != nil {
		return nil, err
	}
	return json.Marshal(keys)
}

func encodeKeyList(b *Bundle) ([]json.RawMessage, error) {
	sorted := b.Clone()
	sorted.Normalize()
	keys := make([]json.RawMessage, 0, len(sorted.X509Authorities)+len(sorted.JWTAuthorities))
	add := func(jwk jose.JSONWebKey) error {
		raw, err := jwk.MarshalJSON()
		if err != nil {
			return fmt.Errorf("bundle: encode %s key for %s: %v", jwk.Use, b.TrustDomain, err)
		}
		keys = append(keys, raw)
		return nil
	}
	// X509-SVID 6.1: one key per CA certificate, no "kid", x5c with that one certificate.
	for _, cert := range sorted.X509Authorities {
		jwk := jose.JSONWebKey{Key: cert.PublicKey, Use: UseX509SVID}
		jwk.Certificates = append(jwk.Certificates, cert)
		if err := add(jwk); err != nil {
			return nil, err
		}
	}
	// JWT-SVID 6.1: one key per signing key, "kid" required.
	for _, key := range sorted.JWTAuthorities {
		if err := add(jose.JSONWebKey{Key: key.PublicKey, KeyID: key.KeyID, Use: UseJWTSVID}); err != nil {
			return nil, err
		}
	}
	for _, key := range sorted.WITAuthorities {
		if err := add(jose.JSONWebKey{Key: key.PublicKey, KeyID: key.KeyID, Use: UseWITSVID}); err != nil {
			return nil, err
		}
	}
	return keys, nil
}

// MarshalPEM encodes the X.509 authorities of b as PEM certificates. JWT keys have
// no PEM form, so they are left out, as SPIRE's "-format pem" does.
func MarshalPEM(b *Bundle) []byte {
	sorted := b.Clone()
	sorted.Normalize()
	var buf bytes.Buffer
	for _, cert := range sorted.X509Authorities {
		_ = pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
	}
	return buf.Bytes()
}

// ParsePEM decodes PEM certificates into a bundle for td with X.509 authorities
// only. Any block other than CERTIFICATE, or no certificate at all, is an error.
func ParsePEM(td spiffeid.TrustDomain, data []byte) (*Bundle, error) {
	b := New(td)
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, invalid(td, "PEM block %q is not a CERTIFICATE", block.Type)
		}
		cert, err := parseCertificate(block.Bytes)
		if err != nil {
			return nil, invalid(td, "PEM certificate %d: %v", len(b.X509Authorities)+1, err)
		}
		b.X509Authorities = append(b.X509Authorities, cert)
	}
	if strings.TrimSpace(string(rest)) != "" {
		return nil, invalid(td, "data after the last PEM block is not PEM")
	}
	if len(b.X509Authorities) == 0 {
		return nil, invalid(td, "no PEM certificate found")
	}
	b.Normalize()
	return b, nil
}

// Decode parses data in the given format. Warnings are only possible for the
// SPIFFE format.
func Decode(td spiffeid.TrustDomain, data []byte, format Format) (*Bundle, []Warning, error) {
	switch format {
	case FormatSPIFFE, "":
		return Parse(td, data)
	case FormatPEM:
		b, err := ParsePEM(td, data)
		return b, nil, err
	}
	return nil, nil, fmt.Errorf("bundle: invalid format %q: use spiffe or pem", format)
}
