package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"

	"github.com/bundlex/bundlex/internal/admin"
	"github.com/bundlex/bundlex/internal/verify"
)

// verifyDemoTokens mints a token in org A and one in org X, checks that org B's
// verify API accepts the first and rejects the second, and returns the API's
// URL.
func verifyDemoTokens(ctx context.Context, out io.Writer, orgA, orgB, orgX *demoOrg) (
	string, error) {
	token, err := mintDemoToken(ctx, orgA, demoAgentID)
	if err != nil {
		return "", fmt.Errorf("demo: org A mints a JWT-SVID: %w", err)
	}
	fmt.Fprintf(out, "4. Org A minted a JWT-SVID for %s,\n   audience %q, valid for %s.\n",
		demoAgentID, demoAudience, demoTokenTTL)
	verifier, err := newDemoVerifyClient(ctx, orgB)
	if err != nil {
		return "", fmt.Errorf("demo: connect to org B's verify API: %w", err)
	}
	status, resp, err := verifier.verifyJWT(ctx, token)
	if err != nil {
		return "", fmt.Errorf("demo: org B verifies the token: %w", err)
	}
	if !resp.Valid {
		return "", fmt.Errorf("demo: org B rejected org A's token with HTTP %d: %s", status,
			describeFailure(resp))
	}
	fmt.Fprintf(out, "5. Org B's verify API accepted it: HTTP %d, spiffe_id %s.\n"+
		"   (POST %s over TLS; the server's X509-SVID\n   was checked against org B's "+
		"bundle.)\n", status, resp.SPIFFEID, verifier.url)

	foreign, err := mintDemoToken(ctx, orgX, demoIntruder)
	if err != nil {
		return "", fmt.Errorf("demo: org X mints a JWT-SVID: %w", err)
	}
	status, resp, err = verifier.verifyJWT(ctx, foreign)
	if err != nil {
		return "", fmt.Errorf("demo: org B verifies org X's token: %w", err)
	}
	if resp.Valid || resp.Error == nil || resp.Error.Code != verify.CodeUnknownTrustDomain {
		return "", fmt.Errorf("demo: org B returned HTTP %d (%s) for org X's token; "+
			"expected the rejection %s", status, describeFailure(resp),
			verify.CodeUnknownTrustDomain)
	}
	fmt.Fprintf(out, "6. Org X minted a token for %s;\n   org B rejected it: HTTP %d %s:\n"+
		"   %s\n", demoIntruder, status, resp.Error.Code, resp.Error.Message)
	return verifier.url, nil
}

func mintDemoToken(ctx context.Context, org *demoOrg, id string) (string, error) {
	svid, err := org.client.MintJWTSVID(ctx, admin.MintJWTSVIDRequest{SPIFFEID: id,
		Audience: []string{demoAudience}, TTLSeconds: int64(demoTokenTTL / time.Second)})
	return svid.Token, err
}

// demoVerifyClient calls org B's verify API over TLS.
type demoVerifyClient struct {
	url  string
	http *http.Client
}

// newDemoVerifyClient returns a client that authenticates the verify API as its
// consumers do. The server presents org B's bundle endpoint X509-SVID, which
// must chain to org B's bundle and carry the endpoint's SPIFFE ID.
func newDemoVerifyClient(ctx context.Context, org *demoOrg) (*demoVerifyClient, error) {
	local, err := org.client.LocalBundle(ctx)
	if err != nil {
		return nil, fmt.Errorf("read %s's bundle: %w", org.td(), err)
	}
	td := spiffeid.RequireTrustDomainFromString(org.td())
	parsed, err := spiffebundle.Parse(td, local.Document)
	if err != nil {
		return nil, fmt.Errorf("parse %s's bundle: %w", org.td(), err)
	}
	serverID, err := spiffeid.FromString(org.cfg.BundleEndpoint.SPIFFEID)
	if err != nil {
		return nil, err
	}
	tlsConfig := tlsconfig.TLSClientConfig(parsed.X509Bundle(), tlsconfig.AuthorizeID(serverID))
	return &demoVerifyClient{
		url: "https://" + org.cfg.Consumers.VerifyAddress + verify.JWTSVIDPath,
		http: &http.Client{Timeout: demoWaitTimeout,
			Transport: &http.Transport{TLSClientConfig: tlsConfig}},
	}, nil
}

// verifyJWT posts token and returns the HTTP status and the decoded response.
func (c *demoVerifyClient) verifyJWT(ctx context.Context, token string) (int, verify.Response,
	error) {
	var resp verify.Response
	body, err := json.Marshal(verify.JWTSVIDRequest{Token: token,
		Audience: verify.Audience{demoAudience}})
	if err != nil {
		return 0, resp, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return 0, resp, err
	}
	req.Header.Set("Content-Type", "application/json")
	httpResp, err := c.http.Do(req)
	if err != nil {
		return 0, resp, err
	}
	defer httpResp.Body.Close()
	if err := json.NewDecoder(httpResp.Body).Decode(&resp); err != nil {
		return httpResp.StatusCode, resp, fmt.Errorf("decode the response of %s (HTTP %d): %w",
			c.url, httpResp.StatusCode, err)
	}
	return httpResp.StatusCode, resp, nil
}

func describeFailure(resp verify.Response) string {
	if resp.Error == nil {
		return fmt.Sprintf("valid %t, spiffe_id %q", resp.Valid, resp.SPIFFEID)
	}
	return resp.Error.Code + ": " + resp.Error.Message
}
