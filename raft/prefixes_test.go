package raft

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRelationshipPrefixesRejected(t *testing.T) {
	s := openLeader(t, singleNodeConfig(t, "n1", t.TempDir()))
	mustApply(t, s, CreateRelationship{Relationship: relationship("org-b.test")})

	tests := []struct {
		name     string
		prefixes []string
		want     string
	}{
		{"other trust domain", []string{"spiffe://org-c.test/x"},
			`invalid ID prefix "spiffe://org-c.test/x": it is not in trust domain org-b.test`},
		{"empty segment", []string{"spiffe://org-b.test/a//b"},
			`invalid ID prefix "spiffe://org-b.test/a//b": path cannot contain empty segments`},
		{"query", []string{"spiffe://org-b.test/a?b"},
			`invalid ID prefix "spiffe://org-b.test/a?b": path segment characters`},
		{"empty prefix", []string{""}, `invalid ID prefix "": it is empty`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			created := relationship("org-c.test")
			created.TrustDomain = "org-b.test"
			created.AllowedIDPrefixes = tt.prefixes
			before := viewOf(s)

			err := s.Apply(testContext(t), CreateRelationship{Relationship: created})
			require.ErrorContains(t, err, "raft: invalid create_relationship command")
			require.ErrorContains(t, err, tt.want)

			err = s.Apply(testContext(t), UpdateRelationship{Relationship: created})
			require.ErrorContains(t, err, "raft: invalid update_relationship command")
			require.ErrorContains(t, err, tt.want)
			require.Equal(t, before, viewOf(s), "a rejected command must change nothing")
		})
	}
}

func TestRelationshipPrefixesDeduplicated(t *testing.T) {
	s := openLeader(t, singleNodeConfig(t, "n1", t.TempDir()))
	rel := relationship("org-b.test")
	rel.AllowedIDPrefixes = []string{"spiffe://org-b.test/a", "spiffe://org-b.test/b",
		"spiffe://org-b.test/a"}
	mustApply(t, s, CreateRelationship{Relationship: rel})
	stored, ok := s.Relationship("org-b.test")
	require.True(t, ok)
	require.Equal(t, []string{"spiffe://org-b.test/a", "spiffe://org-b.test/b"},
		stored.AllowedIDPrefixes)
	require.Len(t, rel.AllowedIDPrefixes, 3, "prepare must not change the caller's slice")

	rel.AllowedIDPrefixes = []string{"spiffe://org-b.test/c/", "spiffe://org-b.test/c/"}
	mustApply(t, s, UpdateRelationship{Relationship: rel})
	stored, ok = s.Relationship("org-b.test")
	require.True(t, ok)
	require.Equal(t, []string{"spiffe://org-b.test/c/"}, stored.AllowedIDPrefixes)
}
