package bundle

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseTrustDomain(t *testing.T) {
	long := strings.Repeat("a", MaxTrustDomainLength)
	cases := []struct {
		name, in, want, err string
	}{
		{"bare name", "org-b.test", "org-b.test", ""},
		{"id form", "spiffe://org-b.test", "org-b.test", ""},
		{"underscore allowed", "org_b.test", "org_b.test", ""},
		{"maximum length", long, long, ""},
		{"over maximum length", long + "a", "", "the maximum is 255"},
		{"uppercase", "Org-B.test", "", "invalid trust domain"},
		{"port", "org-b.test:8443", "", "invalid trust domain"},
		{"userinfo", "user@org-b.test", "", "invalid trust domain"},
		{"percent encoding", "org%2Db.test", "", "invalid trust domain"},
		{"empty", "", "", "invalid trust domain"},
		{"id with path", "spiffe://org-b.test/x", "", "a trust domain has no path"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			td, err := ParseTrustDomain(tc.in)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, td.Name())
		})
	}
}

func TestParseID(t *testing.T) {
	prefix := "spiffe://org-b.test/"
	atLimit := prefix + strings.Repeat("a", MaxIDLength-len(prefix))
	cases := []struct {
		name, in, err string
	}{
		{"plain id", "spiffe://org-b.test/bundlex", ""},
		{"id at 2048 bytes", atLimit, ""},
		{"id over 2048 bytes", atLimit + "a", "the maximum is 2048"},
		{"empty segment", "spiffe://org-b.test//x", "invalid SPIFFE ID"},
		{"dot segment", "spiffe://org-b.test/./x", "invalid SPIFFE ID"},
		{"dot dot segment", "spiffe://org-b.test/../x", "invalid SPIFFE ID"},
		{"trailing slash", "spiffe://org-b.test/x/", "invalid SPIFFE ID"},
		{"query", "spiffe://org-b.test/x?a=b", "invalid SPIFFE ID"},
		{"fragment", "spiffe://org-b.test/x#f", "invalid SPIFFE ID"},
		{"bad path char", "spiffe://org-b.test/a b", "invalid SPIFFE ID"},
		{"wrong scheme", "https://org-b.test/x", "invalid SPIFFE ID"},
		{"long trust domain", "spiffe://" + strings.Repeat("a", 256) + "/x", "trust domain has 256"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id, err := ParseID(tc.in)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.in, id.String())
		})
	}
}
