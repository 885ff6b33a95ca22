package workload

import (
	"fmt"
	"testing"

	"github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
)

func TestValidateJWTSVIDWithGoSPIFFE(t *testing.T) {
	f := newFixture(t)
	src := NewMemorySource(f.snapshot)
	validator := sourceValidator{source: src}
	ts := startServer(t, src, validator)
	unknownKey := newJWTKey(t, "a1") // same key ID as the local key, other key

	valid := []struct {
		name, token, wantID string
	}{
		{"local trust domain", f.keyA.sign(t, "spiffe://org-a.test/web", "db"),
			"spiffe://org-a.test/web"},
		{"federated trust domain", f.keyB.sign(t, "spiffe://org-b.test/api", "db", "cache"),
			"spiffe://org-b.test/api"},
	}
	for _, tc := range valid {
		t.Run(tc.name, func(t *testing.T) {
			svid, err := workloadapi.ValidateJWTSVID(testContext(t), tc.token, "db",
				workloadapi.WithAddr(ts.addr()))
			require.NoError(t, err)
			require.Equal(t, tc.wantID, svid.ID.String())
		})
	}

	invalid := []struct {
		name, token, audience string
	}{
		{"wrong audience", f.keyA.sign(t, "spiffe://org-a.test/web", "db"), "cache"},
		{"unknown signing key", unknownKey.sign(t, "spiffe://org-a.test/web", "db"), "db"},
		{"trust domain not federated",
			f.keyA.sign(t, "spiffe://org-x.test/web", "db"), "db"},
		{"not a token", "abc.def", "db"},
	}
	for _, tc := range invalid {
		t.Run(tc.name, func(t *testing.T) {
			_, _, wantErr := validator.ValidateJWTSVID(tc.token, tc.audience)
			require.Error(t, wantErr)
			_, err := workloadapi.ValidateJWTSVID(testContext(t), tc.token, tc.audience,
				workloadapi.WithAddr(ts.addr()))
			requireStatus(t, err, codes.InvalidArgument, wantErr.Error())
		})
	}
}

func TestValidateJWTSVIDReturnsClaims(t *testing.T) {
	f := newFixture(t)
	ts := startServer(t, NewMemorySource(f.snapshot), nil)
	resp, err := rawClient(t, ts).ValidateJWTSVID(withHeader(testContext(t)),
		&workload.ValidateJWTSVIDRequest{
			Audience: "db",
			Svid:     f.keyA.sign(t, "spiffe://org-a.test/web", "db"),
		})
	require.NoError(t, err)
	require.Equal(t, "spiffe://org-a.test/web", resp.SpiffeId)
	claims := resp.Claims.AsMap()
	require.Equal(t, "spiffe://org-a.test/web", claims["sub"])
	require.Contains(t, claims, "exp")
	require.Equal(t, []any{"ops", "dev"}, claims["groups"])
}

func TestValidateJWTSVIDRejectsMissingFields(t *testing.T) {
	f := newFixture(t)
	ts := startServer(t, NewMemorySource(f.snapshot), nil)
	client := rawClient(t, ts)
	token := f.keyA.sign(t, "spiffe://org-a.test/web", "db")
	cases := []struct {
		name, audience, token, want string
	}{
		{"audience missing", "", token, "audience must be specified"},
		{"token missing", "db", "", "svid must be specified"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := client.ValidateJWTSVID(withHeader(testContext(t)),
				&workload.ValidateJWTSVIDRequest{Audience: tc.audience, Svid: tc.token})
			requireStatus(t, err, codes.InvalidArgument, tc.want)
		})
	}
}

// validatorFunc adapts a function to JWTValidator.
type validatorFunc func(token, audience string) (string, map[string]any, error)

func (f validatorFunc) ValidateJWTSVID(token, audience string) (string, map[string]any, error) {
	return f(token, audience)
}

func TestValidateJWTSVIDValidatorResults(t *testing.T) {
	cases := []struct {
		name      string
		id        string
		claims    map[string]any
		wantCode  codes.Code
		wantClaim any
	}{
		{"typed claim values", "spiffe://org-a.test/web",
			map[string]any{"aud": []string{"db", "cache"}, "exp": int64(1700000000)},
			codes.OK, []any{"db", "cache"}},
		{"empty SPIFFE ID", "", map[string]any{"aud": "db"}, codes.Internal, nil},
		{"claims not JSON", "spiffe://org-a.test/web",
			map[string]any{"aud": func() {}}, codes.Internal, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			validator := validatorFunc(func(string, string) (string, map[string]any, error) {
				return tc.id, tc.claims, nil
			})
			ts := startServer(t, simpleSource(t), validator)
			resp, err := rawClient(t, ts).ValidateJWTSVID(withHeader(testContext(t)),
				&workload.ValidateJWTSVIDRequest{Audience: "db", Svid: "token"})
			if tc.wantCode != codes.OK {
				requireStatus(t, err, tc.wantCode, "")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.wantClaim, resp.Claims.AsMap()["aud"])
			require.Equal(t, float64(1700000000), resp.Claims.AsMap()["exp"])
		})
	}
}

// unavailableValidator cannot judge any token, as the node's validator while it
// loads its replicated state after a start.
type unavailableValidator struct{}

func (unavailableValidator) ValidateJWTSVID(string, string) (string, map[string]any, error) {
	return "", nil, fmt.Errorf("still loading: %w", ErrValidatorUnavailable)
}

func TestValidateJWTSVIDUnavailableValidator(t *testing.T) {
	f := newFixture(t)
	ts := startServer(t, NewMemorySource(f.snapshot), unavailableValidator{})
	_, err := rawClient(t, ts).ValidateJWTSVID(withHeader(testContext(t)),
		&workload.ValidateJWTSVIDRequest{
			Audience: "db",
			Svid:     f.keyA.sign(t, "spiffe://org-a.test/web", "db"),
		})
	requireStatus(t, err, codes.Unavailable, "still loading")
}
