package federation

import (
	"errors"
	"strings"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/stretchr/testify/require"
)

func TestParseIDPrefixesAccepts(t *testing.T) {
	td := spiffeid.RequireTrustDomainFromString("org-a.test")
	tests := []struct {
		name     string
		prefixes []string
		want     []string
	}{
		{"none", nil, nil},
		{"trust domain ID", []string{"spiffe://org-a.test"}, []string{"spiffe://org-a.test"}},
		{"trust domain with slash", []string{"spiffe://org-a.test/"},
			[]string{"spiffe://org-a.test/"}},
		{"path", []string{"spiffe://org-a.test/agents"}, []string{"spiffe://org-a.test/agents"}},
		{"path with slash", []string{"spiffe://org-a.test/agents/"},
			[]string{"spiffe://org-a.test/agents/"}},
		{"duplicates removed in order", []string{"spiffe://org-a.test/b",
			"spiffe://org-a.test/a", "spiffe://org-a.test/b", "spiffe://org-a.test/a/"},
			[]string{"spiffe://org-a.test/b", "spiffe://org-a.test/a",
				"spiffe://org-a.test/a/"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseIDPrefixes(td, tt.prefixes)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestParseIDPrefixesRejects(t *testing.T) {
	td := spiffeid.RequireTrustDomainFromString("org-a.test")
	tests := []struct {
		name   string
		prefix string
		reason string
	}{
		{"empty", "", "it is empty; use a SPIFFE ID of org-a.test, such as " +
			"spiffe://org-a.test/agents/"},
		{"other trust domain", "spiffe://org-b.test/x", "it is not in trust domain " +
			"org-a.test; start it with spiffe://org-a.test/"},
		{"empty segment", "spiffe://org-a.test/agents//x", "path cannot contain empty " +
			"segments; use a SPIFFE ID of org-a.test, optionally ending in /, such as " +
			"spiffe://org-a.test/agents/"},
		{"two trailing slashes", "spiffe://org-a.test/a//", "path cannot have a trailing " +
			"slash; use a SPIFFE ID of org-a.test, optionally ending in /, such as " +
			"spiffe://org-a.test/agents/"},
		{"dot segment", "spiffe://org-a.test/a/../b", "path cannot contain dot segments; " +
			"use a SPIFFE ID of org-a.test, optionally ending in /, such as " +
			"spiffe://org-a.test/agents/"},
		{"query", "spiffe://org-a.test/a?b", "path segment characters are limited to " +
			"letters, numbers, dots, dashes, and underscores; use a SPIFFE ID of org-a.test, " +
			"optionally ending in /, such as spiffe://org-a.test/agents/"},
		{"fragment", "spiffe://org-a.test/a#b", "path segment characters are limited to " +
			"letters, numbers, dots, dashes, and underscores; use a SPIFFE ID of org-a.test, " +
			"optionally ending in /, such as spiffe://org-a.test/agents/"},
		{"no scheme", "org-a.test/agents", "scheme is missing or invalid; use a SPIFFE ID " +
			"of org-a.test, optionally ending in /, such as spiffe://org-a.test/agents/"},
		{"too long", "spiffe://org-a.test/" + strings.Repeat("a", 2030), "it has 2050 " +
			"bytes; a SPIFFE ID has at most 2048 (SPIFFE-ID 2.3)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseIDPrefixes(td, []string{"spiffe://org-a.test/ok", tt.prefix})
			require.Nil(t, got)
			var prefixErr *IDPrefixError
			require.True(t, errors.As(err, &prefixErr), "%v", err)
			require.Equal(t, tt.prefix, prefixErr.Prefix)
			require.Equal(t, tt.reason, prefixErr.Reason)
			require.Equal(t, `invalid ID prefix "`+tt.prefix+`": `+tt.reason, err.Error())
		})
	}
}
