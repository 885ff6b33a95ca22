package verify

import (
	"testing"
)

// TestJWTSVIDTrustDomainSubRejected checks SPIFFE-ID 2.2 for JWT-SVIDs: a trust
// domain ID identifies no workload, so a token for one is malformed, as an
// X509-SVID for one is.
func TestJWTSVIDTrustDomainSubRejected(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name  string
		token string
		sub   string
	}{
		{"local trust domain", f.orgB.mint(t, claims("spiffe://org-b.test", f.now)),
			"spiffe://org-b.test"},
		{"federated trust domain", f.orgA.mint(t, claims("spiffe://org-a.test", f.now)),
			"spiffe://org-a.test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := "token sub " + tt.sub + " has no path; the sub of a JWT-SVID names a " +
				"workload below its trust domain"
			_, err := f.verifier.VerifyJWTSVID(tt.token, []string{"billing"})
			requireCode(t, err, CodeMalformed, want)
			_, err = f.verifier.ValidateJWTSVID(tt.token, "billing")
			requireCode(t, err, CodeMalformed, want)
		})
	}
}
