package federation

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseProfile(t *testing.T) {
	tests := []struct {
		name    string
		input   string
		want    Profile
		wantErr string
	}{
		{name: "https_web profile", input: "https_web", want: ProfileHTTPSWeb},
		{name: "https_spiffe profile", input: "https_spiffe", want: ProfileHTTPSSPIFFE},
		{name: "upper case rejected", input: "HTTPS_WEB",
			wantErr: `federation: invalid federation configuration: unknown bundle ` +
				`endpoint profile "HTTPS_WEB"; use "https_web" or "https_spiffe"`},
		{name: "empty name rejected", input: "",
			wantErr: `unknown bundle endpoint profile ""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseProfile(tt.input)
			if tt.wantErr != "" {
				require.ErrorIs(t, err, ErrInvalidConfig)
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestValidateEndpointURL(t *testing.T) {
	tests := []struct {
		name    string
		raw     string
		wantErr string
	}{
		{name: "host and root path", raw: "https://bundle.org-b.test/"},
		{name: "port path and query", raw: "https://127.0.0.1:8443/bundle?format=spiffe"},
		{name: "IPv6 host", raw: "https://[::1]:8443/"},
		{name: "plain HTTP scheme", raw: "http://bundle.org-b.test/",
			wantErr: `endpoint URL "http://bundle.org-b.test/" has scheme "http"; ` +
				"a bundle endpoint must use https"},
		{name: "relative reference", raw: "/bundle", wantErr: `has scheme ""`},
		{name: "opaque https URL", raw: "https:bundle.org-b.test",
			wantErr: "is not of the form https://host/path"},
		{name: "user and password", raw: "https://user:pw@bundle.org-b.test/",
			wantErr: `endpoint URL "https://user:xxxxx@bundle.org-b.test/" contains ` +
				"userinfo; remove the part before @"},
		{name: "empty host", raw: "https:///bundle", wantErr: "has no host"},
		{name: "port without host", raw: "https://:8443/", wantErr: "has no host"},
		{name: "fragment", raw: "https://bundle.org-b.test/#keys",
			wantErr: "contains a fragment; remove the part from #"},
		{name: "empty fragment", raw: "https://bundle.org-b.test/#",
			wantErr: "contains a fragment"},
		{name: "unparsable URL", raw: "https://bundle.org-b.test:port/",
			wantErr: "invalid endpoint URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := ValidateEndpointURL(tt.raw)
			if tt.wantErr != "" {
				require.ErrorIs(t, err, ErrInvalidEndpointURL)
				require.True(t, strings.HasPrefix(err.Error(), "federation: "), err.Error())
				require.ErrorContains(t, err, tt.wantErr)
				require.Nil(t, u)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.raw, u.String())
		})
	}
}
