package federation

import (
	"encoding/pem"
	"errors"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/stretchr/testify/require"
)

func TestCheckRelationshipAccepts(t *testing.T) {
	local := spiffeid.RequireTrustDomainFromString("org-a.test")
	ca := newTestCA(t, "org-b root")
	caPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw}))

	spiffe, err := CheckRelationship(local, RelationshipSpec{
		TrustDomain:       "org-b.test",
		BundleEndpointURL: "https://org-b.test:8443/",
		Profile:           "https_spiffe",
		EndpointSPIFFEID:  "spiffe://org-b.test/bundlex",
		AllowedIDPrefixes: []string{"spiffe://org-b.test/agents/",
			"spiffe://org-b.test/agents/"},
		Bootstrap:       caPEM,
		BootstrapFormat: "pem",
	})
	require.NoError(t, err)
	require.Equal(t, "org-b.test", spiffe.TrustDomain.Name())
	require.Equal(t, ProfileHTTPSSPIFFE, spiffe.Profile)
	require.Equal(t, "spiffe://org-b.test/bundlex", spiffe.EndpointID.String())
	require.Equal(t, []string{"spiffe://org-b.test/agents/"}, spiffe.AllowedIDPrefixes)
	require.NotNil(t, spiffe.Bootstrap)
	require.Len(t, spiffe.Bootstrap.X509Authorities, 1)

	web, err := CheckRelationship(local, RelationshipSpec{
		TrustDomain:       "spiffe://org-c.test",
		BundleEndpointURL: "https://org-c.test/bundle",
		Profile:           "https_web",
		CAPEM:             caPEM,
	})
	require.NoError(t, err)
	require.Equal(t, "org-c.test", web.TrustDomain.Name())
	require.True(t, web.EndpointID.IsZero())
	require.Len(t, web.CACerts, 1)
	require.Nil(t, web.AllowedIDPrefixes)
}

func TestCheckRelationshipRejects(t *testing.T) {
	local := spiffeid.RequireTrustDomainFromString("org-a.test")
	valid := RelationshipSpec{TrustDomain: "org-b.test",
		BundleEndpointURL: "https://org-b.test/", Profile: "https_spiffe",
		EndpointSPIFFEID: "spiffe://org-b.test/bundlex"}
	tests := []struct {
		name   string
		change func(*RelationshipSpec)
		field  string
		want   string
	}{
		{"own trust domain", func(s *RelationshipSpec) { s.TrustDomain = "org-a.test" },
			FieldTrustDomain, "trust domain org-a.test is this node's own trust domain; " +
				"a relationship names another trust domain"},
		{"http URL", func(s *RelationshipSpec) { s.BundleEndpointURL = "http://org-b.test/" },
			FieldEndpointURL, `federation: endpoint URL "http://org-b.test/" has scheme ` +
				`"http"; a bundle endpoint must use https`},
		{"missing profile", func(s *RelationshipSpec) { s.Profile = "" }, FieldProfile,
			"profile is missing for org-b.test: set https_spiffe or https_web; bundlex " +
				"never guesses the profile"},
		{"prefix of other domain", func(s *RelationshipSpec) {
			s.AllowedIDPrefixes = []string{"spiffe://org-c.test/x"}
		}, FieldAllowedIDPrefixes, `invalid ID prefix "spiffe://org-c.test/x": it is not ` +
			"in trust domain org-b.test; start it with spiffe://org-b.test/"},
		{"empty prefix", func(s *RelationshipSpec) { s.AllowedIDPrefixes = []string{""} },
			FieldAllowedIDPrefixes, `invalid ID prefix "": it is empty; use a SPIFFE ID of ` +
				"org-b.test, such as spiffe://org-b.test/agents/"},
		{"CA under https_spiffe", func(s *RelationshipSpec) { s.CAPEM = "x" }, FieldCA,
			"a CA file applies to https_web only; org-b.test uses https_spiffe"},
		{"CA without certificate", func(s *RelationshipSpec) {
			s.Profile, s.EndpointSPIFFEID, s.CAPEM = "https_web", "", "not PEM"
		}, FieldCA, "CA file for org-b.test: no PEM certificate found"},
		{"bad bootstrap", func(s *RelationshipSpec) { s.Bootstrap = "{" }, FieldBootstrap,
			"bootstrap bundle: "},
		{"bad bootstrap format", func(s *RelationshipSpec) {
			s.Bootstrap, s.BootstrapFormat = "{}", "der"
		}, FieldBootstrap, `bundle: invalid format "der": use spiffe or pem`},
		{"endpoint ID under https_web", func(s *RelationshipSpec) { s.Profile = "https_web" },
			FieldEndpointID, `endpoint SPIFFE ID "spiffe://org-b.test/bundlex" applies to ` +
				"https_spiffe only"},
		{"missing endpoint ID", func(s *RelationshipSpec) { s.EndpointSPIFFEID = "" },
			FieldEndpointID, "endpoint SPIFFE ID is missing for org-b.test"},
		{"invalid endpoint ID", func(s *RelationshipSpec) { s.EndpointSPIFFEID = "org-b" },
			FieldEndpointID, `bundle: invalid SPIFFE ID "org-b"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := valid
			tt.change(&spec)
			got, err := CheckRelationship(local, spec)
			require.Nil(t, got)
			var fieldErr *FieldError
			require.True(t, errors.As(err, &fieldErr), "%v", err)
			require.Equal(t, tt.field, fieldErr.Field)
			require.Contains(t, err.Error(), tt.want)
		})
	}
}
