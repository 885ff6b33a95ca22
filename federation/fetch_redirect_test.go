package federation

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/stretchr/testify/require"
)

// redirectHandler redirects every request to target and counts the requests.
type redirectHandler struct {
	target string
	hits   atomic.Int64
}

func (h *redirectHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.hits.Add(1)
	http.Redirect(w, r, h.target, http.StatusFound)
}

func TestFetchFollowsValidRedirect(t *testing.T) {
	caB := newTestCA(t, "org-b CA")
	webCA := newTestCA(t, "web CA")
	doc := `{"keys":[],"spiffe_sequence":3}`

	t.Run("spiffe same endpoint ID", func(t *testing.T) {
		target := startTestEndpoint(t, bundleHandler(doc), caB.issueSVID(t, orgBEndpointID))
		first := &redirectHandler{target: target + "/"}
		base := startTestEndpoint(t, first, caB.issueSVID(t, orgBEndpointID))
		peer := Peer{TrustDomain: orgB, URL: base + "/moved", Profile: ProfileHTTPSSPIFFE,
			EndpointID: orgBEndpointID, TrustBundle: caB.x509Bundle(orgB)}
		body, err := Fetch(context.Background(), peer, quickFetchOptions())
		require.NoError(t, err)
		require.Equal(t, doc, string(body))

		// The next fetch starts again at the configured URL (SPIFFE Federation 7.5.1).
		_, err = Fetch(context.Background(), peer, quickFetchOptions())
		require.NoError(t, err)
		require.Equal(t, int64(2), first.hits.Load())
	})

	t.Run("web new host name", func(t *testing.T) {
		target := startTestEndpoint(t, bundleHandler(doc), webCA.issueWebCert(t, "localhost"))
		target = strings.Replace(target, "127.0.0.1", "localhost", 1)
		first := &redirectHandler{target: target + "/"}
		base := startTestEndpoint(t, first, webCA.issueWebCert(t, "127.0.0.1"))
		body, err := Fetch(context.Background(), webFetchPeer(webCA, base+"/"),
			quickFetchOptions())
		require.NoError(t, err)
		require.Equal(t, doc, string(body))
		require.Equal(t, int64(1), first.hits.Load())
	})
}

func TestFetchRejectsRedirectTarget(t *testing.T) {
	caB := newTestCA(t, "org-b CA")
	webCA := newTestCA(t, "web CA")
	doc := `{"keys":[]}`
	var plainHits atomic.Int64
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		plainHits.Add(1)
		_, _ = w.Write([]byte(doc))
	}))
	t.Cleanup(plain.Close)
	otherID := startTestEndpoint(t, bundleHandler(doc),
		caB.issueSVID(t, spiffeid.RequireFromPath(orgB, "/impostor")))
	// The target's certificate names 127.0.0.1 but the redirect names localhost.
	wrongHost := strings.Replace(startTestEndpoint(t, bundleHandler(doc),
		webCA.issueWebCert(t, "127.0.0.1")), "127.0.0.1", "localhost", 1)
	svidServer := func(target string) string {
		return startTestEndpoint(t, &redirectHandler{target: target},
			caB.issueSVID(t, orgBEndpointID))
	}
	webServer := func(target string) string {
		return startTestEndpoint(t, &redirectHandler{target: target},
			webCA.issueWebCert(t, "127.0.0.1"))
	}
	spiffePeer := func(url string) Peer {
		return Peer{TrustDomain: orgB, URL: url, Profile: ProfileHTTPSSPIFFE,
			EndpointID: orgBEndpointID, TrustBundle: caB.x509Bundle(orgB)}
	}

	tests := []struct {
		name      string
		peer      Peer
		wantKinds []error
		wantMsg   string
	}{
		{name: "spiffe redirect to HTTP", peer: spiffePeer(svidServer(plain.URL + "/")),
			wantKinds: []error{ErrRedirect, ErrInvalidEndpointURL},
			wantMsg:   `has scheme "http"; a bundle endpoint must use https`},
		{name: "web redirect to HTTP", peer: webFetchPeer(webCA, webServer(plain.URL+"/")),
			wantKinds: []error{ErrRedirect, ErrInvalidEndpointURL},
			wantMsg:   `has scheme "http"; a bundle endpoint must use https`},
		{name: "redirect with userinfo",
			peer:      webFetchPeer(webCA, webServer("https://user:secret@localhost:1/")),
			wantKinds: []error{ErrRedirect, ErrInvalidEndpointURL},
			wantMsg:   "contains userinfo"},
		{name: "spiffe target other ID", peer: spiffePeer(svidServer(otherID + "/")),
			wantKinds: []error{ErrEndpointIDMismatch, ErrServerAuthentication},
			wantMsg: "server presented SPIFFE ID spiffe://org-b.test/impostor, expected " +
				"spiffe://org-b.test/bundle-endpoint"},
		{name: "web target wrong host", peer: webFetchPeer(webCA, webServer(wrongHost+"/")),
			wantKinds: []error{ErrServerAuthentication},
			wantMsg: "verify server certificate for localhost: x509: certificate is " +
				"not valid for any names, but wanted to match localhost"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Fetch(context.Background(), tt.peer, quickFetchOptions())
			requireKinds(t, err, tt.wantKinds...)
			require.ErrorContains(t, err, tt.wantMsg)
			require.NotContains(t, err.Error(), "secret")
		})
	}
	require.Zero(t, plainHits.Load(), "a redirect reached the plain HTTP server")
}

func TestFetchRedirectLimit(t *testing.T) {
	webCA := newTestCA(t, "web CA")
	var hits atomic.Int64
	// Each request redirects to the next step, so the number of requests shows how
	// many redirects were followed.
	base := startTestEndpoint(t, http.HandlerFunc(func(w http.ResponseWriter,
		r *http.Request) {
		step := hits.Add(1)
		http.Redirect(w, r, "/step"+strconv.FormatInt(step, 10), http.StatusFound)
	}), webCA.issueWebCert(t, "127.0.0.1"))

	for _, limit := range []int{0, 1, 3} {
		t.Run("limit "+strconv.Itoa(limit), func(t *testing.T) {
			hits.Store(0)
			opts := quickFetchOptions()
			opts.MaxRedirects = limit
			_, err := Fetch(context.Background(), webFetchPeer(webCA, base+"/"), opts)
			requireKinds(t, err, ErrRedirect)
			require.ErrorContains(t, err, "redirects already followed, the limit is "+
				strconv.Itoa(limit))
			require.Equal(t, int64(limit+1), hits.Load())
		})
	}
}

func TestFetchStatusAfterRedirect(t *testing.T) {
	webCA := newTestCA(t, "web CA")
	target := startTestEndpoint(t, NewHandler("/"), webCA.issueWebCert(t, "127.0.0.1"))
	base := startTestEndpoint(t, &redirectHandler{target: target + "/"},
		webCA.issueWebCert(t, "127.0.0.1"))
	_, err := Fetch(context.Background(), webFetchPeer(webCA, base+"/"), quickFetchOptions())
	requireKinds(t, err, ErrHTTPStatus)
	require.EqualError(t, err, "federation: fetch bundle for org-b.test from "+base+
		"/: server at "+target+"/ (after redirects) responded with 503 Service Unavailable; "+
		"expected 200 OK")
}

func TestFetchSendsRequestHeaders(t *testing.T) {
	webCA := newTestCA(t, "web CA")
	headers := make(chan http.Header, 1)
	base := startTestEndpoint(t, http.HandlerFunc(func(w http.ResponseWriter,
		r *http.Request) {
		headers <- r.Header.Clone()
		_, _ = w.Write([]byte(`{"keys":[]}`))
	}), webCA.issueWebCert(t, "127.0.0.1"))
	opts := quickFetchOptions()
	opts.UserAgent = "bundlex-test/1"
	_, err := Fetch(context.Background(), webFetchPeer(webCA, base+"/"), opts)
	require.NoError(t, err)
	got := <-headers
	require.Equal(t, "bundlex-test/1", got.Get("User-Agent"))
	require.Equal(t, "application/json", got.Get("Accept"))
}
