package federation

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bundlex/bundlex/internal/testutil"
)

// trickleInterval is how often the slow clients below send one more byte. It
// is far below the read timeout of the servers, so only a deadline on the whole
// request can stop them.
const trickleInterval = 50 * time.Millisecond

// startLimitedEndpoint starts a server with cfg, filling in the address, a
// certificate for 127.0.0.1 and a logger, and returns it with the CA that
// signed its certificate.
func startLimitedEndpoint(t *testing.T, cfg EndpointConfig) (*EndpointServer, *testCA) {
	t.Helper()
	ca := newTestCA(t, "limits test CA")
	cert := ca.issueWebCert(t, "127.0.0.1")
	cfg.Address = "127.0.0.1:0"
	cfg.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		return &cert, nil
	}
	if cfg.Logger == nil {
		cfg.Logger = newTestLogger(t)
	}
	server, err := NewEndpointServer(cfg)
	require.NoError(t, err)
	require.NoError(t, server.Start())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, server.Shutdown(ctx))
	})
	return server, ca
}

// readBodyHandler reads the whole request body before it responds, as the
// verify API does.
func readBodyHandler(w http.ResponseWriter, r *http.Request) {
	if _, err := io.ReadAll(r.Body); err != nil {
		http.Error(w, "read request body: "+err.Error(), http.StatusBadRequest)
		return
	}
	_, _ = io.WriteString(w, "ok")
}

// trickle writes one byte to conn every trickleInterval until a write fails or
// stop is closed, and then reports the write error, or nil after stop.
func trickle(conn net.Conn, stop <-chan struct{}) <-chan error {
	result := make(chan error, 1)
	go func() {
		ticker := time.NewTicker(trickleInterval)
		defer ticker.Stop()
		for {
			select {
			case <-stop:
				result <- nil
				return
			case <-ticker.C:
			}
			if _, err := conn.Write([]byte("x")); err != nil {
				result <- err
				return
			}
		}
	}()
	return result
}

// requireClosedByServer reads conn to its end and checks that the server, not
// the client's deadline, ended it.
func requireClosedByServer(t *testing.T, conn net.Conn) []byte {
	t.Helper()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(30*time.Second)))
	data, err := io.ReadAll(conn)
	require.False(t, errors.Is(err, os.ErrDeadlineExceeded),
		"connection still open after 30s; received %q", data)
	return data
}

func TestEndpointServerCutsSlowBody(t *testing.T) {
	bundleHandler := NewHandler("/")
	bundleHandler.SetBundle([]byte(`{"keys":[]}`))
	tests := []struct {
		name    string
		handler http.Handler
		request string
	}{
		{name: "GET body ignored", handler: bundleHandler,
			request: "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 60000\r\n\r\n"},
		{name: "POST body read", handler: http.HandlerFunc(readBodyHandler),
			request: "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 60000\r\n\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			server, ca := startLimitedEndpoint(t, EndpointConfig{
				Handler: tt.handler, ReadTimeout: 500 * time.Millisecond})
			conn, err := tls.Dial("tcp", server.Addr().String(), &tls.Config{
				RootCAs: ca.pool(), NextProtos: []string{"http/1.1"}})
			require.NoError(t, err)
			defer conn.Close()
			_, err = io.WriteString(conn, tt.request)
			require.NoError(t, err)

			stop := make(chan struct{})
			defer close(stop)
			trickling := trickle(conn, stop)
			response := requireClosedByServer(t, conn)
			require.NotEmpty(t, response, "server closed without a response")
			select {
			case err := <-trickling:
				t.Fatalf("the client stopped sending before the server closed: %v", err)
			default:
			}
		})
	}
}

// slowBody yields one byte per trickleInterval until ctx ends.
type slowBody struct{ ctx context.Context }

func (b slowBody) Read(p []byte) (int, error) {
	select {
	case <-b.ctx.Done():
		return 0, b.ctx.Err()
	case <-time.After(trickleInterval):
	}
	p[0] = 'x'
	return 1, nil
}

func TestEndpointServerCutsSlowBodyOverHTTP2(t *testing.T) {
	server, ca := startLimitedEndpoint(t, EndpointConfig{
		Handler: http.HandlerFunc(readBodyHandler), ReadTimeout: 500 * time.Millisecond})
	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca.pool()}, ForceAttemptHTTP2: true}}
	defer client.CloseIdleConnections()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost,
		"https://"+server.Addr().String()+"/", slowBody{ctx: ctx})
	require.NoError(t, err)
	req.ContentLength = 60000
	resp, err := client.Do(req)
	require.NoError(t, ctx.Err(), "request still running after 30s")
	if err == nil {
		defer resp.Body.Close()
		require.Equal(t, "HTTP/2.0", resp.Proto)
		require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	}
}

func TestEndpointServerDropsSilentClient(t *testing.T) {
	tests := []struct {
		name string
		sent []byte
	}{
		{name: "nothing sent", sent: nil},
		// The first bytes of a TLS handshake record, whose body never follows.
		{name: "partial ClientHello", sent: []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			server, _ := startLimitedEndpoint(t, EndpointConfig{
				Handler: http.NotFoundHandler(), ReadTimeout: 500 * time.Millisecond})
			conn, err := net.DialTimeout("tcp", server.Addr().String(), 10*time.Second)
			require.NoError(t, err)
			defer conn.Close()
			_, err = conn.Write(tt.sent)
			require.NoError(t, err)
			response := requireClosedByServer(t, conn)
			require.Empty(t, response)
		})
	}
}

// gatedHandler counts the requests it serves at once and holds each one until
// the test releases it.
type gatedHandler struct {
	inFlight    atomic.Int32
	maxInFlight atomic.Int32
	release     chan struct{}
}

func (h *gatedHandler) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	now := h.inFlight.Add(1)
	for {
		seen := h.maxInFlight.Load()
		if now <= seen || h.maxInFlight.CompareAndSwap(seen, now) {
			break
		}
	}
	<-h.release
	h.inFlight.Add(-1)
	_, _ = io.WriteString(w, "served")
}

func TestEndpointServerCapsConnections(t *testing.T) {
	const maxConnections, extra = 3, 2
	handler := &gatedHandler{release: make(chan struct{})}
	logs := &testutil.SyncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	server, ca := startLimitedEndpoint(t, EndpointConfig{Handler: handler,
		MaxConnections: maxConnections, MaxConnectionsSetting: "test.max_connections",
		Logger: logger})
	url := "https://" + server.Addr().String() + "/"

	// One connection per request: HTTP/1.1 without keep-alive, so that each
	// connection closes with its response and frees its slot.
	newClient := func() *http.Client {
		return &http.Client{Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: ca.pool()},
			TLSNextProto:      map[string]func(string, *tls.Conn) http.RoundTripper{},
			DisableKeepAlives: true,
		}}
	}
	results := make(chan error, maxConnections+extra)
	get := func() {
		resp, err := newClient().Get(url)
		if err == nil {
			body, readErr := io.ReadAll(resp.Body)
			resp.Body.Close()
			switch {
			case readErr != nil:
				err = readErr
			case resp.StatusCode != http.StatusOK || string(body) != "served":
				err = fmt.Errorf("status %d, body %q", resp.StatusCode, body)
			}
		}
		results <- err
	}
	for range maxConnections + extra {
		go get()
	}

	require.Eventually(t, func() bool { return handler.inFlight.Load() >= maxConnections },
		30*time.Second, 10*time.Millisecond, "the first connections were not served")
	// Accept waits for a free slot, so it takes no more connections from the
	// kernel: the other clients stay in the accept queue.
	require.Eventually(t, func() bool { return server.listener.Waits() > 0 },
		30*time.Second, 10*time.Millisecond, "Accept did not wait at the cap")
	require.Never(t, func() bool { return handler.inFlight.Load() > maxConnections },
		time.Second, 10*time.Millisecond, "more connections served than the cap")
	require.Equal(t, maxConnections, server.listener.Open())
	require.Contains(t, logs.String(), "connection limit reached")
	require.Contains(t, logs.String(), "limit=test.max_connections")

	close(handler.release)
	for range maxConnections + extra {
		select {
		case err := <-results:
			require.NoError(t, err)
		case <-time.After(30 * time.Second):
			t.Fatal("a request still runs 30s after the handler released all")
		}
	}
	require.Equal(t, int32(maxConnections), handler.maxInFlight.Load())

	// The server keeps serving once the queue is drained.
	go get()
	require.NoError(t, <-results)
}

func TestEndpointServerLogsItsName(t *testing.T) {
	logs := &testutil.SyncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	server, _ := startLimitedEndpoint(t, EndpointConfig{Name: "verify API",
		Handler: http.NotFoundHandler(), Logger: logger})
	require.NoError(t, server.Shutdown(context.Background()))

	require.Contains(t, logs.String(), `msg="verify API started"`)
	require.Contains(t, logs.String(), `msg="verify API stopped"`)
	require.NotContains(t, logs.String(), "bundle endpoint")
}

func TestEndpointServerLimitDefaults(t *testing.T) {
	getCert := func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return nil, nil }
	server, err := NewEndpointServer(EndpointConfig{Address: "127.0.0.1:0",
		Handler: http.NotFoundHandler(), GetCertificate: getCert})
	require.NoError(t, err)
	require.Equal(t, DefaultName, server.cfg.Name)
	require.Equal(t, DefaultReadTimeout, server.cfg.ReadTimeout)
	require.Equal(t, DefaultMaxConnections, server.cfg.MaxConnections)

	short, err := NewEndpointServer(EndpointConfig{Address: "127.0.0.1:0",
		Handler: http.NotFoundHandler(), GetCertificate: getCert,
		ReadTimeout: 2 * time.Second})
	require.NoError(t, err)
	require.Equal(t, 2*time.Second, short.cfg.ReadHeaderTimeout,
		"the header timeout must not outlast the whole-request timeout")
}
