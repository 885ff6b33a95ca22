package federation

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/stretchr/testify/require"
)

var (
	orgB           = spiffeid.RequireTrustDomainFromString("org-b.test")
	orgC           = spiffeid.RequireTrustDomainFromString("org-c.test")
	orgBEndpointID = spiffeid.RequireFromPath(orgB, "/bundle-endpoint")
	orgCEndpointID = spiffeid.RequireFromPath(orgC, "/bundle-endpoint")
)

// allFetchKinds lists every sentinel, so a test can check that an error matches
// exactly the expected ones.
var allFetchKinds = []error{ErrInvalidConfig, ErrInvalidEndpointURL, ErrConnection,
	ErrTimeout, ErrServerAuthentication, ErrProfileMismatch, ErrEndpointIDMismatch,
	ErrRedirect, ErrHTTPStatus, ErrBundleTooLarge}

func requireKinds(t *testing.T, err error, want ...error) {
	t.Helper()
	require.Error(t, err)
	for _, kind := range allFetchKinds {
		wanted := false
		for _, w := range want {
			wanted = wanted || w == kind
		}
		require.Equal(t, wanted, errors.Is(err, kind), "errors.Is(err, %q) for %v",
			kind, err)
	}
}

func bundleHandler(doc string) *Handler {
	handler := NewHandler("/")
	handler.SetBundle([]byte(doc))
	return handler
}

func quickFetchOptions() FetchOptions {
	opts := DefaultFetchOptions()
	opts.Timeout = 30 * time.Second
	return opts
}

func TestFetchSuccess(t *testing.T) {
	caB := newTestCA(t, "org-b CA")
	caC := newTestCA(t, "org-c CA")
	webCA := newTestCA(t, "web CA")
	doc := `{"keys":[],"spiffe_sequence":7}`
	both := x509bundle.NewSet(caB.x509Bundle(orgB), caC.x509Bundle(orgC))

	tests := []struct {
		name string
		url  string
		peer Peer
	}{
		{name: "spiffe self-serving endpoint",
			url: startTestEndpoint(t, bundleHandler(doc), caB.issueSVID(t, orgBEndpointID)),
			peer: Peer{Profile: ProfileHTTPSSPIFFE, EndpointID: orgBEndpointID,
				TrustBundle: caB.x509Bundle(orgB)}},
		{name: "spiffe endpoint in other domain",
			url: startTestEndpoint(t, bundleHandler(doc), caC.issueSVID(t, orgCEndpointID)),
			peer: Peer{Profile: ProfileHTTPSSPIFFE, EndpointID: orgCEndpointID,
				TrustBundle: both}},
		{name: "web with root pool",
			url:  startTestEndpoint(t, bundleHandler(doc), webCA.issueWebCert(t, "127.0.0.1")),
			peer: Peer{Profile: ProfileHTTPSWeb, RootCAs: webCA.pool()}},
		{name: "web with extra root",
			url: startTestEndpoint(t, bundleHandler(doc), webCA.issueWebCert(t, "127.0.0.1")),
			peer: Peer{Profile: ProfileHTTPSWeb,
				ExtraRootCAs: []*x509.Certificate{webCA.cert}}},
		{name: "web with DNS name",
			url: strings.Replace(startTestEndpoint(t, bundleHandler(doc),
				webCA.issueWebCert(t, "localhost")), "127.0.0.1", "localhost", 1),
			peer: Peer{Profile: ProfileHTTPSWeb, RootCAs: webCA.pool()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			peer := tt.peer
			peer.TrustDomain = orgB
			peer.URL = tt.url + "/"
			body, err := Fetch(context.Background(), peer, quickFetchOptions())
			require.NoError(t, err)
			require.Equal(t, doc, string(body))
		})
	}
}

func TestFetchServerAuthentication(t *testing.T) {
	caB := newTestCA(t, "org-b CA")
	rogueCA := newTestCA(t, "rogue CA")
	webCA := newTestCA(t, "web CA")
	doc := `{"keys":[]}`
	expired := webCA.issueLeaf(t, &x509.Certificate{DNSNames: []string{"localhost"},
		NotAfter: time.Now().Add(-time.Minute)})
	spiffePeer := Peer{Profile: ProfileHTTPSSPIFFE, EndpointID: orgBEndpointID,
		TrustBundle: caB.x509Bundle(orgB)}
	webPeer := Peer{Profile: ProfileHTTPSWeb, RootCAs: webCA.pool()}

	tests := []struct {
		name      string
		cert      tls.Certificate
		host      string
		peer      Peer
		wantKinds []error
		wantMsg   string
	}{
		{name: "spiffe other endpoint ID", cert: caB.issueSVID(t,
			spiffeid.RequireFromPath(orgB, "/other")), peer: spiffePeer,
			wantKinds: []error{ErrEndpointIDMismatch, ErrServerAuthentication},
			wantMsg: "server presented SPIFFE ID spiffe://org-b.test/other, expected " +
				"spiffe://org-b.test/bundle-endpoint"},
		{name: "spiffe untrusted authority", cert: rogueCA.issueSVID(t, orgBEndpointID),
			peer: spiffePeer, wantKinds: []error{ErrServerAuthentication},
			wantMsg: "verify X509-SVID spiffe://org-b.test/bundle-endpoint against the " +
				"bundle of org-b.test: x509svid: could not verify leaf certificate"},
		{name: "spiffe bundle missing", cert: caB.issueSVID(t, orgBEndpointID),
			peer: Peer{Profile: ProfileHTTPSSPIFFE, EndpointID: orgBEndpointID,
				TrustBundle: caB.x509Bundle(orgC)},
			wantKinds: []error{ErrServerAuthentication},
			wantMsg:   "no X.509 bundle of org-b.test to authenticate endpoint"},
		{name: "spiffe peer web certificate", cert: webCA.issueWebCert(t, "127.0.0.1"),
			peer: spiffePeer, wantKinds: []error{ErrProfileMismatch, ErrServerAuthentication},
			wantMsg: `server certificate (subject "CN=127.0.0.1", names [127.0.0.1]) has no ` +
				"SPIFFE ID, so the server seems to speak https_web, but the relationship " +
				"is configured for https_spiffe"},
		{name: "web peer SPIFFE certificate", cert: caB.issueSVID(t, orgBEndpointID),
			peer: webPeer, wantKinds: []error{ErrProfileMismatch, ErrServerAuthentication},
			wantMsg: "the certificate carries the SPIFFE ID " +
				"spiffe://org-b.test/bundle-endpoint, so the server seems to speak " +
				"https_spiffe, but the relationship is configured for https_web"},
		{name: "web untrusted authority", cert: rogueCA.issueWebCert(t, "127.0.0.1"),
			peer: webPeer, wantKinds: []error{ErrServerAuthentication},
			wantMsg: "verify server certificate for 127.0.0.1: x509: certificate signed " +
				"by unknown authority"},
		{name: "web system roots only", cert: webCA.issueWebCert(t, "127.0.0.1"),
			peer: Peer{Profile: ProfileHTTPSWeb}, wantKinds: []error{ErrServerAuthentication},
			wantMsg: "verify server certificate for 127.0.0.1: x509: certificate signed " +
				"by unknown authority"},
		{name: "web wrong host name", cert: webCA.issueWebCert(t, "other.test"),
			peer: webPeer, wantKinds: []error{ErrServerAuthentication},
			wantMsg: "verify server certificate for 127.0.0.1: x509: cannot validate " +
				"certificate for 127.0.0.1 because it doesn't contain any IP SANs"},
		{name: "web DNS name mismatch", cert: webCA.issueWebCert(t, "other.test"),
			host: "localhost", peer: webPeer, wantKinds: []error{ErrServerAuthentication},
			wantMsg: "x509: certificate is valid for other.test, not localhost"},
		{name: "web expired certificate", cert: expired, host: "localhost",
			peer: webPeer, wantKinds: []error{ErrServerAuthentication},
			wantMsg: "x509: certificate has expired or is not yet valid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := startTestEndpoint(t, bundleHandler(doc), tt.cert)
			if tt.host != "" {
				base = strings.Replace(base, "127.0.0.1", tt.host, 1)
			}
			peer := tt.peer
			peer.TrustDomain = orgB
			peer.URL = base + "/"
			body, err := Fetch(context.Background(), peer, quickFetchOptions())
			require.Nil(t, body)
			requireKinds(t, err, tt.wantKinds...)
			require.ErrorContains(t, err, "federation: fetch bundle for org-b.test from "+
				peer.URL+": ")
			require.ErrorContains(t, err, tt.wantMsg)
		})
	}
}

// webFetchPeer returns a https_web peer for url that trusts ca.
func webFetchPeer(ca *testCA, url string) Peer {
	return Peer{TrustDomain: orgB, URL: url, Profile: ProfileHTTPSWeb, RootCAs: ca.pool()}
}

func TestFetchHTTPStatus(t *testing.T) {
	ca := newTestCA(t, "web CA")
	base := startTestEndpoint(t, NewHandler("/"), ca.issueWebCert(t, "127.0.0.1"))

	_, err := Fetch(context.Background(), webFetchPeer(ca, base+"/"), quickFetchOptions())
	requireKinds(t, err, ErrHTTPStatus)
	require.EqualError(t, err, "federation: fetch bundle for org-b.test from "+base+
		"/: server responded with 503 Service Unavailable; expected 200 OK")

	_, err = Fetch(context.Background(), webFetchPeer(ca, base+"/other"),
		quickFetchOptions())
	requireKinds(t, err, ErrHTTPStatus)
	require.ErrorContains(t, err, "server responded with 404 Not Found")
}

func TestFetchBundleSizeLimit(t *testing.T) {
	ca := newTestCA(t, "web CA")
	const limit = 1024
	exact := `{"keys":[],"x":"` + strings.Repeat("a", limit-len(`{"keys":[],"x":""}`)) + `"}`
	over := exact[:len(exact)-2] + `a"}`
	require.Len(t, exact, limit)
	// The streaming handler sends no Content-Length, so only reading can find the size.
	streaming := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		for i := range over {
			_, _ = w.Write([]byte{over[i]})
			w.(http.Flusher).Flush()
		}
	})

	tests := []struct {
		name    string
		handler http.Handler
		wantErr string
	}{
		{name: "exact limit accepted", handler: bundleHandler(exact)},
		{name: "declared length over limit", handler: bundleHandler(over),
			wantErr: "bundle of 1025 bytes is larger than the limit of 1024 bytes; raise " +
				"federation.max_bundle_size if the peer's bundle is really this large"},
		{name: "streamed body over limit", handler: streaming,
			wantErr: "bundle of more than 1024 bytes is larger than the limit of 1024 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := startTestEndpoint(t, tt.handler, ca.issueWebCert(t, "127.0.0.1"))
			opts := quickFetchOptions()
			opts.MaxBundleSize = limit
			body, err := Fetch(context.Background(), webFetchPeer(ca, base+"/"), opts)
			if tt.wantErr == "" {
				require.NoError(t, err)
				require.Equal(t, exact, string(body))
				return
			}
			requireKinds(t, err, ErrBundleTooLarge)
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}

func TestFetchTimeouts(t *testing.T) {
	ca := newTestCA(t, "web CA")
	silent := http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})
	stalledBody := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		_, _ = w.Write([]byte(`{"keys":`))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	for name, handler := range map[string]http.Handler{
		"no response headers": silent, "stalled body": stalledBody} {
		t.Run(name, func(t *testing.T) {
			base := startTestEndpoint(t, handler, ca.issueWebCert(t, "127.0.0.1"))
			opts := quickFetchOptions()
			opts.Timeout = 200 * time.Millisecond
			_, err := Fetch(context.Background(), webFetchPeer(ca, base+"/"), opts)
			requireKinds(t, err, ErrTimeout)
			require.ErrorIs(t, err, context.DeadlineExceeded)
			require.ErrorContains(t, err, "no complete response within 200ms")
		})
	}
}

func TestFetchCallerCancels(t *testing.T) {
	ca := newTestCA(t, "web CA")
	entered := make(chan struct{})
	base := startTestEndpoint(t, http.HandlerFunc(func(_ http.ResponseWriter,
		r *http.Request) {
		close(entered)
		<-r.Context().Done()
	}), ca.issueWebCert(t, "127.0.0.1"))
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-entered
		cancel()
	}()
	_, err := Fetch(ctx, webFetchPeer(ca, base+"/"), quickFetchOptions())
	requireKinds(t, err)
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorContains(t, err, "fetch stopped: context canceled")
}

func TestFetchConnectionRefused(t *testing.T) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := listener.Addr().String()
	require.NoError(t, listener.Close())

	ca := newTestCA(t, "web CA")
	_, err = Fetch(context.Background(), webFetchPeer(ca, "https://"+addr+"/"),
		quickFetchOptions())
	requireKinds(t, err, ErrConnection)
	require.ErrorContains(t, err, "connection refused; check that the endpoint is "+
		"running and reachable")
}

func TestFetchPlainTLSFailure(t *testing.T) {
	// A plain HTTP server on the port: the TLS handshake fails without any
	// certificate to judge.
	server := &http.Server{Handler: http.NotFoundHandler(),
		ReadHeaderTimeout: 10 * time.Second}
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = server.Serve(listener) }()
	t.Cleanup(func() { _ = server.Close() })

	ca := newTestCA(t, "web CA")
	_, err = Fetch(context.Background(),
		webFetchPeer(ca, "https://"+listener.Addr().String()+"/"), quickFetchOptions())
	requireKinds(t, err, ErrConnection)
	require.ErrorContains(t, err, "TLS handshake with "+listener.Addr().String())
}

func TestFetchRejectsConfig(t *testing.T) {
	ca := newTestCA(t, "org-b CA")
	valid := Peer{TrustDomain: orgB, URL: "https://127.0.0.1:1/", Profile: ProfileHTTPSSPIFFE,
		EndpointID: orgBEndpointID, TrustBundle: ca.x509Bundle(orgB)}
	tests := []struct {
		name      string
		change    func(*Peer, *FetchOptions)
		wantKinds []error
		wantMsg   string
	}{
		{name: "missing trust domain",
			change:    func(p *Peer, _ *FetchOptions) { p.TrustDomain = spiffeid.TrustDomain{} },
			wantKinds: []error{ErrInvalidConfig}, wantMsg: "trust domain is missing"},
		{name: "plain HTTP URL",
			change:    func(p *Peer, _ *FetchOptions) { p.URL = "http://127.0.0.1:1/" },
			wantKinds: []error{ErrInvalidConfig, ErrInvalidEndpointURL},
			wantMsg:   `has scheme "http"; a bundle endpoint must use https`},
		{name: "unknown profile",
			change:    func(p *Peer, _ *FetchOptions) { p.Profile = "HTTPS_WEB" },
			wantKinds: []error{ErrInvalidConfig},
			wantMsg:   `unknown bundle endpoint profile "HTTPS_WEB"`},
		{name: "missing endpoint ID",
			change:    func(p *Peer, _ *FetchOptions) { p.EndpointID = spiffeid.ID{} },
			wantKinds: []error{ErrInvalidConfig},
			wantMsg:   "profile https_spiffe requires the endpoint SPIFFE ID"},
		{name: "missing trust bundle",
			change:    func(p *Peer, _ *FetchOptions) { p.TrustBundle = nil },
			wantKinds: []error{ErrInvalidConfig},
			wantMsg:   "requires a trust bundle for org-b.test"},
		{name: "zero timeout",
			change:    func(_ *Peer, o *FetchOptions) { o.Timeout = 0 },
			wantKinds: []error{ErrInvalidConfig}, wantMsg: "fetch timeout is 0s"},
		{name: "zero bundle size limit",
			change:    func(_ *Peer, o *FetchOptions) { o.MaxBundleSize = 0 },
			wantKinds: []error{ErrInvalidConfig},
			wantMsg:   "federation.max_bundle_size is 0; it must be positive"},
		{name: "negative redirect limit",
			change:    func(_ *Peer, o *FetchOptions) { o.MaxRedirects = -1 },
			wantKinds: []error{ErrInvalidConfig}, wantMsg: "max redirects is -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			peer, opts := valid, DefaultFetchOptions()
			tt.change(&peer, &opts)
			_, err := Fetch(context.Background(), peer, opts)
			requireKinds(t, err, tt.wantKinds...)
			require.ErrorContains(t, err, tt.wantMsg)
		})
	}
}

func TestDefaultFetchOptions(t *testing.T) {
	opts := DefaultFetchOptions()
	require.Equal(t, 10*time.Second, opts.Timeout)
	require.Equal(t, int64(1<<20), opts.MaxBundleSize)
	require.Equal(t, 3, opts.MaxRedirects)
	require.Equal(t, "bundlex", opts.UserAgent)
}
