package federation

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

const (
	// DefaultFetchTimeout bounds one fetch: connecting, TLS handshakes, redirects
	// and reading the body.
	DefaultFetchTimeout = 10 * time.Second
	// DefaultMaxBundleSize is the default of the federation.max_bundle_size setting,
	// in bytes. A bundle with 50 EC P-256 X.509 authorities is about 32 KiB.
	DefaultMaxBundleSize int64 = 1 << 20
	// DefaultMaxRedirects is how many redirects one fetch follows by default.
	DefaultMaxRedirects = 3
	// DefaultUserAgent is the User-Agent header sent to peers.
	DefaultUserAgent = "bundlex"

	// maxResponseHeaderBytes bounds the response headers of a peer. A bundle
	// endpoint sends a handful of short headers.
	maxResponseHeaderBytes = 64 << 10
)

// FetchOptions sets the limits of one fetch.
type FetchOptions struct {
	// Timeout bounds the whole fetch, including redirects and the body. Must be > 0.
	Timeout time.Duration
	// MaxBundleSize is the largest accepted body in bytes, after any content
	// decoding. Must be > 0.
	MaxBundleSize int64
	// MaxRedirects is the maximum number of redirects to follow. Zero rejects every
	// redirect.
	MaxRedirects int
	// UserAgent is sent as the User-Agent header. Empty sends Go's default.
	UserAgent string
}

// DefaultFetchOptions returns the options with every default applied.
func DefaultFetchOptions() FetchOptions {
	return FetchOptions{
		Timeout:       DefaultFetchTimeout,
		MaxBundleSize: DefaultMaxBundleSize,
		MaxRedirects:  DefaultMaxRedirects,
		UserAgent:     DefaultUserAgent,
	}
}

func (o FetchOptions) validate() error {
	var err error
	switch {
	case o.Timeout <= 0:
		err = fmt.Errorf("fetch timeout is %s; it must be positive", o.Timeout)
	case o.MaxBundleSize <= 0:
		err = fmt.Errorf("federation.max_bundle_size is %d; it must be positive",
			o.MaxBundleSize)
	case o.MaxRedirects < 0:
		err = fmt.Errorf("max redirects is %d; it must be 0 or more", o.MaxRedirects)
	}
	if err != nil {
		return withKinds(err, ErrInvalidConfig)
	}
	return nil
}

// Fetch performs one HTTPS GET of peer's bundle endpoint with every check of the
// peer's profile and returns the response body unparsed. A redirect is followed only
// to a valid endpoint URL that passes the same checks. The caller keeps peer.URL for
// the next fetch (SPIFFE Federation 7.5.1). The error matches one of the sentinel
// errors of this package, or ctx's error when ctx ends first.
func Fetch(ctx context.Context, peer Peer, opts FetchOptions) ([]byte, error) {
	body, err := fetch(ctx, peer, opts)
	if err != nil {
		return nil, fmt.Errorf("federation: fetch bundle for %s from %s: %w",
			peer.TrustDomain.Name(), redactURL(peer.URL), err)
	}
	return body, nil
}

func fetch(parent context.Context, peer Peer, opts FetchOptions) ([]byte, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	endpoint, err := peer.validate()
	if err != nil {
		return nil, err
	}
	verifier, err := newServerVerifier(peer)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(parent, opts.Timeout)
	defer cancel()

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint.String(), nil)
	if err != nil {
		return nil, withKinds(fmt.Errorf("build request: %w", err), ErrInvalidConfig)
	}
	req.Header.Set("Accept", "application/json")
	if opts.UserAgent != "" {
		req.Header.Set("User-Agent", opts.UserAgent)
	}
	resp, err := newFetchClient(verifier, opts).Do(req)
	if err != nil {
		return nil, classifyError(parent, ctx, opts, err)
	}
	defer resp.Body.Close()

	if resp.StatusCode != http.StatusOK {
		return nil, withKinds(fmt.Errorf("server %sresponded with %s; expected 200 OK",
			redirectNote(endpoint, resp.Request.URL), resp.Status), ErrHTTPStatus)
	}
	body, err := readBody(parent, ctx, opts, resp)
	if err == nil && ctx.Err() != nil {
		// net/http may still deliver a response that arrived while the request was
		// being canceled, such as the one a server sends when its handler gives up
		// on the closed connection. It came too late to count.
		return nil, classifyError(parent, ctx, opts, ctx.Err())
	}
	return body, err
}

// newFetchClient returns a client for one fetch. It only speaks HTTPS through
// dialTLS, never uses a proxy, and keeps no connections after the fetch.
func newFetchClient(verifier *serverVerifier, opts FetchOptions) *http.Client {
	transport := &http.Transport{
		Proxy: nil,
		// Plain HTTP never reaches the network, even if a redirect requests it
		// (SPIFFE Federation 7.2). CheckRedirect already rejects such targets.
		DialContext: func(context.Context, string, string) (net.Conn, error) {
			return nil, withKinds(errors.New("plain HTTP is not allowed"), ErrRedirect)
		},
		DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dialTLS(ctx, verifier, network, addr)
		},
		DisableKeepAlives:      true,
		MaxResponseHeaderBytes: maxResponseHeaderBytes,
	}
	return &http.Client{
		Transport: transport,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			return checkRedirect(opts, req, via)
		},
	}
}

// dialTLS connects to addr and authenticates the server for the host in addr, which
// is the host of the request URL, so a redirect target is checked for its own host.
func dialTLS(ctx context.Context, v *serverVerifier, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, withKinds(fmt.Errorf("invalid address %q: %w", addr, err), ErrConnection)
	}
	var dialer net.Dialer
	raw, err := dialer.DialContext(ctx, network, addr)
	if err != nil {
		return nil, withKinds(fmt.Errorf("connect: %w; check that the endpoint is "+
			"running and reachable", err), ErrConnection)
	}
	conn := tls.Client(raw, v.tlsConfig(host))
	if err := conn.HandshakeContext(ctx); err != nil {
		_ = raw.Close()
		if errors.Is(err, ErrServerAuthentication) {
			return nil, err
		}
		return nil, withKinds(fmt.Errorf("TLS handshake with %s: %w", addr, err),
			ErrConnection)
	}
	return conn, nil
}

// checkRedirect applies SPIFFE Federation 7.5.1: the target must be a valid endpoint
// URL. The TLS checks of the profile then run in dialTLS for the target's connection.
func checkRedirect(opts FetchOptions, req *http.Request, via []*http.Request) error {
	from := via[len(via)-1].URL.Redacted()
	if len(via) > opts.MaxRedirects {
		return withKinds(fmt.Errorf("redirect from %s to %s rejected: %d redirects "+
			"already followed, the limit is %d", from, req.URL.Redacted(), len(via)-1,
			opts.MaxRedirects), ErrRedirect)
	}
	if _, err := validateEndpointURL(req.URL.String()); err != nil {
		return withKinds(fmt.Errorf("redirect from %s rejected: %w", from, err), ErrRedirect)
	}
	return nil
}

func readBody(parent, ctx context.Context, opts FetchOptions, resp *http.Response) (
	[]byte, error) {
	limit := opts.MaxBundleSize
	tooLarge := func(size string) error {
		return withKinds(fmt.Errorf("bundle of %s is larger than the limit of %d bytes; "+
			"raise federation.max_bundle_size if the peer's bundle is really this large",
			size, limit), ErrBundleTooLarge)
	}
	if resp.ContentLength > limit {
		return nil, tooLarge(fmt.Sprintf("%d bytes", resp.ContentLength))
	}
	// One byte over the limit is enough to know that the body is too large.
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, classifyError(parent, ctx, opts, fmt.Errorf("read body: %w", err))
	}
	if int64(len(body)) > limit {
		return nil, tooLarge("more than " + fmt.Sprint(limit) + " bytes")
	}
	return body, nil
}

// classifyError turns a failed request into an error of the package: a timeout when
// the fetch's own deadline passed, the caller's context error when ctx ended, the
// marked error from dialTLS or checkRedirect, or a connection failure.
func classifyError(parent, ctx context.Context, opts FetchOptions, err error) error {
	if parent.Err() != nil {
		return fmt.Errorf("fetch stopped: %w", context.Cause(parent))
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return withKinds(fmt.Errorf("no complete response within %s; check that the "+
			"endpoint is reachable and responsive", opts.Timeout),
			ErrTimeout, context.DeadlineExceeded)
	}
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		err = urlErr.Err
	}
	for _, kind := range []error{ErrServerAuthentication, ErrRedirect, ErrConnection} {
		if errors.Is(err, kind) {
			return err
		}
	}
	return withKinds(fmt.Errorf("request failed: %w", err), ErrConnection)
}

// redirectNote names the final URL when redirects led away from the configured one.
func redirectNote(configured, final *url.URL) string {
	if final == nil || final.String() == configured.String() {
		return ""
	}
	return "at " + final.Redacted() + " (after redirects) "
}

func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	return u.Redacted()
}
