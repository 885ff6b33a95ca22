package federation

import (
	"crypto/tls"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// startHandlerEndpoint serves handler over TLS and returns its base URL and a
// client that trusts its certificate.
func startHandlerEndpoint(t *testing.T, handler http.Handler) (string, *http.Client) {
	t.Helper()
	ca := newTestCA(t, "handler test CA")
	url := startTestEndpoint(t, handler, ca.issueWebCert(t, "127.0.0.1"))
	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca.pool(), MinVersion: tls.VersionTLS12},
	}}
	t.Cleanup(client.CloseIdleConnections)
	return url, client
}

type handlerResponse struct {
	status int
	header http.Header
	body   string
}

func doRequest(t *testing.T, client *http.Client, method, url string,
	header map[string]string) handlerResponse {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	for name, value := range header {
		req.Header.Set(name, value)
	}
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return handlerResponse{status: resp.StatusCode, header: resp.Header, body: string(body)}
}

const testBundleDoc = `{"keys":[],"spiffe_sequence":1}`

func TestHandlerServesBundle(t *testing.T) {
	handler := NewHandler("/bundle")
	handler.SetBundle([]byte(testBundleDoc))
	base, client := startHandlerEndpoint(t, handler)

	resp := doRequest(t, client, http.MethodGet, base+"/bundle", nil)
	require.Equal(t, http.StatusOK, resp.status)
	require.Equal(t, testBundleDoc, resp.body)
	require.Equal(t, "application/json", resp.header.Get("Content-Type"))
	require.Equal(t, "no-cache", resp.header.Get("Cache-Control"))
	require.Equal(t, "31", resp.header.Get("Content-Length"))
	require.Regexp(t, regexp.MustCompile(`^"[0-9a-f]{32}"$`), resp.header.Get("ETag"))

	head := doRequest(t, client, http.MethodHead, base+"/bundle", nil)
	require.Equal(t, http.StatusOK, head.status)
	require.Empty(t, head.body)
	require.Equal(t, resp.header.Get("ETag"), head.header.Get("ETag"))
	require.Equal(t, "application/json", head.header.Get("Content-Type"))
	require.Equal(t, "31", head.header.Get("Content-Length"))
}

func TestHandlerConditionalRequests(t *testing.T) {
	handler := NewHandler("/")
	handler.SetBundle([]byte(testBundleDoc))
	base, client := startHandlerEndpoint(t, handler)
	etag := doRequest(t, client, http.MethodGet, base+"/", nil).header.Get("ETag")
	require.NotEmpty(t, etag)

	tests := []struct {
		name        string
		ifNoneMatch string
		wantStatus  int
	}{
		{name: "exact tag not modified", ifNoneMatch: etag, wantStatus: 304},
		{name: "weak tag not modified", ifNoneMatch: "W/" + etag, wantStatus: 304},
		{name: "tag in list not modified", ifNoneMatch: `"other", ` + etag,
			wantStatus: 304},
		{name: "star not modified", ifNoneMatch: "*", wantStatus: 304},
		{name: "other tag full response", ifNoneMatch: `"0123"`, wantStatus: 200},
		{name: "unquoted tag full response", ifNoneMatch: strings.Trim(etag, `"`),
			wantStatus: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := doRequest(t, client, http.MethodGet, base+"/",
				map[string]string{"If-None-Match": tt.ifNoneMatch})
			require.Equal(t, tt.wantStatus, resp.status)
			require.Equal(t, etag, resp.header.Get("ETag"))
			require.Equal(t, "no-cache", resp.header.Get("Cache-Control"))
			if tt.wantStatus == http.StatusNotModified {
				require.Empty(t, resp.body)
			} else {
				require.Equal(t, testBundleDoc, resp.body)
			}
		})
	}
}

func TestHandlerNewVersionChangesETag(t *testing.T) {
	handler := NewHandler("/")
	handler.SetBundle([]byte(testBundleDoc))
	base, client := startHandlerEndpoint(t, handler)
	oldTag := doRequest(t, client, http.MethodGet, base+"/", nil).header.Get("ETag")

	newDoc := `{"keys":[],"spiffe_sequence":2}`
	handler.SetBundle([]byte(newDoc))
	resp := doRequest(t, client, http.MethodGet, base+"/",
		map[string]string{"If-None-Match": oldTag})
	require.Equal(t, http.StatusOK, resp.status)
	require.Equal(t, newDoc, resp.body)
	require.NotEqual(t, oldTag, resp.header.Get("ETag"))

	// The same document always gets the same tag, on any node.
	other := NewHandler("/")
	other.SetBundle([]byte(newDoc))
	require.Equal(t, resp.header.Get("ETag"), other.current.Load().etag)
}

func TestHandlerCopiesDocument(t *testing.T) {
	handler := NewHandler("/")
	doc := []byte(testBundleDoc)
	handler.SetBundle(doc)
	doc[2] = 'X'
	require.Equal(t, testBundleDoc, string(handler.current.Load().doc))
}

func TestHandlerErrorResponses(t *testing.T) {
	withBundle := NewHandler("/")
	withBundle.SetBundle([]byte(testBundleDoc))
	cleared := NewHandler("/")
	cleared.SetBundle([]byte(testBundleDoc))
	cleared.SetBundle(nil)

	tests := []struct {
		name       string
		handler    *Handler
		method     string
		path       string
		wantStatus int
		wantAllow  string
		wantRetry  string
	}{
		{name: "post method not allowed", handler: withBundle, method: http.MethodPost,
			path: "/", wantStatus: 405, wantAllow: "GET, HEAD"},
		{name: "delete method not allowed", handler: withBundle,
			method: http.MethodDelete, path: "/", wantStatus: 405, wantAllow: "GET, HEAD"},
		{name: "other path not found", handler: withBundle, method: http.MethodGet,
			path: "/keys", wantStatus: 404},
		{name: "no bundle yet unavailable", handler: NewHandler("/"),
			method: http.MethodGet, path: "/", wantStatus: 503, wantRetry: "1"},
		{name: "cleared bundle unavailable", handler: cleared, method: http.MethodGet,
			path: "/", wantStatus: 503, wantRetry: "1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base, client := startHandlerEndpoint(t, tt.handler)
			resp := doRequest(t, client, tt.method, base+tt.path, nil)
			require.Equal(t, tt.wantStatus, resp.status)
			require.Equal(t, tt.wantAllow, resp.header.Get("Allow"))
			require.Equal(t, tt.wantRetry, resp.header.Get("Retry-After"))
			require.Empty(t, resp.header.Get("ETag"))
			require.NotContains(t, resp.body, "keys")
		})
	}
}

func TestHandlerPathWithoutSlash(t *testing.T) {
	handler := NewHandler("bundle.json")
	handler.SetBundle([]byte(testBundleDoc))
	base, client := startHandlerEndpoint(t, handler)
	resp := doRequest(t, client, http.MethodGet, base+"/bundle.json", nil)
	require.Equal(t, http.StatusOK, resp.status)
	require.Equal(t, testBundleDoc, resp.body)
}

func TestHandlerConcurrentUpdates(t *testing.T) {
	handler := NewHandler("/")
	docs := []string{`{"keys":[],"spiffe_sequence":1}`, `{"keys":[],"spiffe_sequence":2}`}
	handler.SetBundle([]byte(docs[0]))
	base, client := startHandlerEndpoint(t, handler)

	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
				handler.SetBundle([]byte(docs[i%2]))
			}
		}
	})
	for range 50 {
		resp := doRequest(t, client, http.MethodGet, base+"/", nil)
		require.Equal(t, http.StatusOK, resp.status)
		require.Contains(t, docs, resp.body)
		require.Equal(t, "31", resp.header.Get("Content-Length"))
	}
	close(stop)
	wg.Wait()
}

func TestMatchesETag(t *testing.T) {
	const etag = `"abc"`
	tests := []struct {
		name   string
		values []string
		want   bool
	}{
		{name: "no header", values: nil, want: false},
		{name: "empty value", values: []string{""}, want: false},
		{name: "exact tag", values: []string{`"abc"`}, want: true},
		{name: "weak tag", values: []string{`W/"abc"`}, want: true},
		{name: "list with spaces", values: []string{`"x" ,  "abc" `}, want: true},
		{name: "second header line", values: []string{`"x"`, `"abc"`}, want: true},
		{name: "star", values: []string{"*"}, want: true},
		{name: "prefix of tag", values: []string{`"ab"`}, want: false},
		{name: "unquoted tag", values: []string{"abc"}, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, matchesETag(tt.values, etag))
		})
	}
}
