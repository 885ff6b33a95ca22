package bundle

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/stretchr/testify/require"
)

func TestMarshalRoundTrip(t *testing.T) {
	b := New(tdB)
	b.X509Authorities = append(b.X509Authorities, newCA(t, "org-b.test"), newCA(t, "org-b.test"))
	b.JWTAuthorities = append(b.JWTAuthorities, newJWTKey(t, "k2"), newJWTKey(t, "k1"))
	b.WITAuthorities = append(b.WITAuthorities, newJWTKey(t, "w1"))
	b.Sequence, b.HasSequence = 9, true
	b.RefreshHint = 90 * time.Second

	doc, err := Marshal(b)
	require.NoError(t, err)
	back, warnings, err := Parse(tdB, doc)
	require.NoError(t, err)
	require.Empty(t, warnings)
	require.True(t, SameKeys(b, back))
	require.Equal(t, uint64(9), back.Sequence)
	require.Equal(t, 90*time.Second, back.RefreshHint)
	require.Len(t, back.WITAuthorities, 1)

	again, err := Marshal(back)
	require.NoError(t, err)
	require.Equal(t, string(doc), string(again), "encoding must be canonical")
}

func TestMarshalFollowsPublishingRules(t *testing.T) {
	b := New(tdB)
	b.X509Authorities = append(b.X509Authorities, newCA(t, "org-b.test"))
	b.JWTAuthorities = append(b.JWTAuthorities, newJWTKey(t, "k1"))
	doc, err := Marshal(b)
	require.NoError(t, err)

	var parsed struct {
		Keys []map[string]any `json:"keys"`
	}
	require.NoError(t, json.Unmarshal(doc, &parsed))
	require.Len(t, parsed.Keys, 2)
	x509Key, jwtKey := parsed.Keys[0], parsed.Keys[1]
	// X509-SVID 6.1: one certificate in x5c, no kid.
	require.Equal(t, UseX509SVID, x509Key["use"])
	require.NotContains(t, x509Key, "kid")
	require.Len(t, x509Key["x5c"], 1)
	// JWT-SVID 6.1: kid is required on jwt-svid keys.
	require.Equal(t, UseJWTSVID, jwtKey["use"])
	require.Equal(t, "k1", jwtKey["kid"])
	// Without a sequence or hint, neither member is written.
	require.NotContains(t, string(doc), "spiffe_sequence")
	require.NotContains(t, string(doc), "spiffe_refresh_hint")
}

func TestMarshalMatchesGoSPIFFE(t *testing.T) {
	b := New(tdB)
	b.X509Authorities = append(b.X509Authorities, newCA(t, "org-b.test"))
	b.JWTAuthorities = append(b.JWTAuthorities, newJWTKey(t, "k1"))
	b.Sequence, b.HasSequence = 4, true
	doc, err := Marshal(b)
	require.NoError(t, err)

	theirs, err := spiffebundle.Parse(tdB, doc)
	require.NoError(t, err)
	require.True(t, theirs.X509Authorities()[0].Equal(b.X509Authorities[0]))
	_, ok := theirs.FindJWTAuthority("k1")
	require.True(t, ok)
	seq, ok := theirs.SequenceNumber()
	require.True(t, ok)
	require.Equal(t, uint64(4), seq)
	require.True(t, b.SPIFFEBundle().Equal(theirs))
}

func TestSameKeysIgnoresOrderAndSequence(t *testing.T) {
	ca1, ca2 := newCA(t, "org-b.test"), newCA(t, "org-b.test")
	a := &Bundle{TrustDomain: tdB, Sequence: 1, HasSequence: true}
	a.X509Authorities = append(a.X509Authorities, ca1, ca2)
	b := &Bundle{TrustDomain: tdB, Sequence: 2, HasSequence: true, RefreshHint: time.Minute}
	b.X509Authorities = append(b.X509Authorities, ca2, ca1)
	require.True(t, SameKeys(a, b))

	b.X509Authorities = b.X509Authorities[:1]
	require.False(t, SameKeys(a, b))
}

func TestPEMRoundTrip(t *testing.T) {
	b := New(tdB)
	b.X509Authorities = append(b.X509Authorities, newCA(t, "org-b.test"), newCA(t, "org-b.test"))
	b.JWTAuthorities = append(b.JWTAuthorities, newJWTKey(t, "k1"))
	data := MarshalPEM(b)
	require.Equal(t, 2, strings.Count(string(data), "BEGIN CERTIFICATE"))

	back, err := ParsePEM(tdB, data)
	require.NoError(t, err)
	require.Len(t, back.X509Authorities, 2)
	require.Empty(t, back.JWTAuthorities, "PEM carries no JWT keys")
}

func TestParsePEMRejectsBadInput(t *testing.T) {
	cases := []struct {
		name, data, want string
	}{
		{"empty file", "", "no PEM certificate found"},
		{"not PEM", "hello", "not PEM"},
		{"private key block", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
			`"PRIVATE KEY" is not a CERTIFICATE`},
		{"garbage certificate", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
			"PEM certificate 1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePEM(tdB, []byte(tc.data))
			require.ErrorIs(t, err, ErrInvalidBundle)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestDecodeAndParseFormat(t *testing.T) {
	f, err := ParseFormat("")
	require.NoError(t, err)
	require.Equal(t, FormatSPIFFE, f)
	_, err = ParseFormat("jwks")
	require.EqualError(t, err, `bundle: invalid format "jwks": use spiffe or pem`)

	b := New(tdB)
	b.X509Authorities = append(b.X509Authorities, newCA(t, "org-b.test"))
	got, _, err := Decode(tdB, MarshalPEM(b), FormatPEM)
	require.NoError(t, err)
	require.True(t, SameKeys(b, got))
}
