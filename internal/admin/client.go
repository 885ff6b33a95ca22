package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// MaxResponseBody is the largest admin response the client reads, in bytes. The
// list of every federated bundle is the largest response, so the limit is well
// above MaxRequestBody.
const MaxResponseBody = 64 << 20

// baseURL only sets the Host header, because every request goes to the Unix socket.
const baseURL = "http://bundlex-admin"

// Client calls the admin API of one node over its Unix socket. It is safe for
// concurrent use.
type Client struct {
	socketPath string
	http       *http.Client
}

// NewClient returns a client for the admin socket at socketPath. timeout bounds
// each request from dialing to reading the whole response. A timeout of 0 means
// no limit.
func NewClient(socketPath string, timeout time.Duration) *Client {
	transport := &http.Transport{
		// Proxy stays nil so that an HTTP_PROXY variable never sends admin
		// requests away from the local socket.
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dialer net.Dialer
			conn, err := dialer.DialContext(ctx, "unix", socketPath)
			if err != nil {
				return nil, &dialError{err: err}
			}
			return conn, nil
		},
		MaxIdleConns:    2,
		IdleConnTimeout: 30 * time.Second,
	}
	return &Client{
		socketPath: socketPath,
		http: &http.Client{
			Transport: transport,
			Timeout:   timeout,
			// The admin API never redirects, so a redirect is returned as an error.
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
	}
}

// dialError marks a failure to connect to the socket, as opposed to a failure
// after the node accepted the connection.
type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// Status returns the node and Raft status. A node that is not ready still
// returns its status, with Ready false and the reason in ReadyError.
func (c *Client) Status(ctx context.Context) (Status, error) {
	return call[Status](ctx, c, http.MethodGet, "/v1/status", nil)
}

// LocalBundle returns the local trust domain's bundle.
func (c *Client) LocalBundle(ctx context.Context) (Bundle, error) {
	return call[Bundle](ctx, c, http.MethodGet, "/v1/bundle", nil)
}

// Bundles returns every federated bundle.
func (c *Client) Bundles(ctx context.Context) ([]Bundle, error) {
	return call[[]Bundle](ctx, c, http.MethodGet, "/v1/bundles", nil)
}

// Bundle returns the federated bundle of trust domain td.
func (c *Client) Bundle(ctx context.Context, td string) (Bundle, error) {
	path, err := trustDomainPath("/v1/bundles/", td, "")
	if err != nil {
		return Bundle{}, err
	}
	return call[Bundle](ctx, c, http.MethodGet, path, nil)
}

// SetBundle overrides the federated bundle of td and returns the stored bundle.
func (c *Client) SetBundle(ctx context.Context, td string, req SetBundleRequest) (Bundle, error) {
	path, err := trustDomainPath("/v1/bundles/", td, "")
	if err != nil {
		return Bundle{}, err
	}
	return call[Bundle](ctx, c, http.MethodPut, path, req)
}

// DeleteBundle deletes the federated bundle of td.
func (c *Client) DeleteBundle(ctx context.Context, td string) error {
	path, err := trustDomainPath("/v1/bundles/", td, "")
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodDelete, path, nil, nil)
}

// Relationships returns every federation relationship with its status.
func (c *Client) Relationships(ctx context.Context) ([]Relationship, error) {
	return call[[]Relationship](ctx, c, http.MethodGet, "/v1/relationships", nil)
}

// Relationship returns the relationship with td and its status.
func (c *Client) Relationship(ctx context.Context, td string) (Relationship, error) {
	path, err := trustDomainPath("/v1/relationships/", td, "")
	if err != nil {
		return Relationship{}, err
	}
	return call[Relationship](ctx, c, http.MethodGet, path, nil)
}

// CreateRelationship creates a relationship and returns it as stored.
func (c *Client) CreateRelationship(ctx context.Context,
	req RelationshipRequest) (Relationship, error) {
	return call[Relationship](ctx, c, http.MethodPost, "/v1/relationships", req)
}

// UpdateRelationship changes the relationship with td. Empty fields of req keep
// their stored values.
func (c *Client) UpdateRelationship(ctx context.Context, td string,
	req RelationshipRequest) (Relationship, error) {
	path, err := trustDomainPath("/v1/relationships/", td, "")
	if err != nil {
		return Relationship{}, err
	}
	return call[Relationship](ctx, c, http.MethodPut, path, req)
}

// DeleteRelationship ends the relationship with td and deletes its bundle
// (SPIFFE Federation 6.3).
func (c *Client) DeleteRelationship(ctx context.Context, td string) error {
	path, err := trustDomainPath("/v1/relationships/", td, "")
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodDelete, path, nil, nil)
}

// RefreshRelationship makes the node fetch td's bundle now and returns the
// relationship with the status after that fetch.
func (c *Client) RefreshRelationship(ctx context.Context, td string) (Relationship, error) {
	path, err := trustDomainPath("/v1/relationships/", td, "/refresh")
	if err != nil {
		return Relationship{}, err
	}
	return call[Relationship](ctx, c, http.MethodPost, path, nil)
}

// RotateAuthority makes the node prepare new signing keys now and returns the
// local bundle that publishes them.
func (c *Client) RotateAuthority(ctx context.Context) (Bundle, error) {
	return call[Bundle](ctx, c, http.MethodPost, "/v1/authority/rotate", nil)
}

// MintX509SVID makes the node's built-in authority sign an X509-SVID and returns
// it with its private key.
func (c *Client) MintX509SVID(ctx context.Context, req MintX509SVIDRequest) (X509SVID, error) {
	return call[X509SVID](ctx, c, http.MethodPost, "/v1/svid/x509", req)
}

// MintJWTSVID makes the node's built-in authority sign a JWT-SVID.
func (c *Client) MintJWTSVID(ctx context.Context, req MintJWTSVIDRequest) (JWTSVID, error) {
	return call[JWTSVID](ctx, c, http.MethodPost, "/v1/svid/jwt", req)
}

// trustDomainPath escapes td as one path segment. Empty, "." and ".." are
// rejected because HTTP path cleaning would turn them into another route.
func trustDomainPath(prefix, td, suffix string) (string, error) {
	if td == "" || td == "." || td == ".." {
		return "", fmt.Errorf("admin: invalid trust domain %q: pass a name such as "+
			"example.org", td)
	}
	return prefix + url.PathEscape(td) + suffix, nil
}

func call[T any](ctx context.Context, c *Client, method, path string, body any) (T, error) {
	var out T
	err := c.do(ctx, method, path, body, &out)
	return out, err
}

// do sends one request and decodes a 2xx response into out, which may be nil.
// Any other status returns an *APIError.
func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	req, err := newRequest(ctx, method, path, body)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return c.transportError(method, path, err)
	}
	defer resp.Body.Close()

	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBody+1))
	if err != nil {
		return c.transportError(method, path, err)
	}
	if len(data) > MaxResponseBody {
		return fmt.Errorf("admin: %s %s: response is larger than MaxResponseBody "+
			"(%d bytes); list fewer objects or read them one at a time",
			method, path, MaxResponseBody)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return decodeAPIError(method, path, resp.StatusCode, data)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("admin: %s %s: invalid JSON in the response from %s: %w; "+
			"check that the socket belongs to a bundlex node of the same version",
			method, path, c.socketPath, err)
	}
	return nil
}

func newRequest(ctx context.Context, method, path string, body any) (*http.Request, error) {
	var reader io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("admin: encode the %s %s request: %w", method, path, err)
		}
		reader = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, baseURL+path, reader)
	if err != nil {
		return nil, fmt.Errorf("admin: build the %s %s request: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// transportError explains a request that got no complete response.
func (c *Client) transportError(method, path string, err error) error {
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("admin: %s %s on %s canceled: %w", method, path, c.socketPath, err)
	}
	var dialErr *dialError
	if errors.As(err, &dialErr) {
		return fmt.Errorf("admin: cannot reach the node at %s: %w; "+
			"is `bundlex server` running, and is --socket right?", c.socketPath, dialErr.err)
	}
	var netErr net.Error
	if (errors.As(err, &netErr) && netErr.Timeout()) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("admin: %s %s on %s timed out (client timeout %s): %w; "+
			"raise --timeout or check the node's log", method, path, c.socketPath,
			c.http.Timeout, err)
	}
	return fmt.Errorf("admin: %s %s on %s failed: %w", method, path, c.socketPath, err)
}

// maxErrorExcerpt is how much of a response without an ErrorResponse body an
// APIError quotes, in bytes.
const maxErrorExcerpt = 200

// decodeAPIError turns a non-2xx response into an *APIError. A body that is not
// an ErrorResponse leaves Code empty and quotes the start of the body.
func decodeAPIError(method, path string, status int, data []byte) *APIError {
	var body ErrorResponse
	if err := json.Unmarshal(data, &body); err == nil && body.Message != "" {
		return &APIError{Status: status, Code: body.Code, Message: body.Message}
	}
	excerpt := bytes.TrimSpace(data)
	if len(excerpt) > maxErrorExcerpt {
		excerpt = excerpt[:maxErrorExcerpt]
	}
	return &APIError{Status: status, Code: body.Code, Message: fmt.Sprintf(
		"admin: %s %s: the node returned HTTP %d without an error message (body %q); "+
			"check the node's log", method, path, status, excerpt)}
}
