package federation

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	spiffefederation "github.com/spiffe/go-spiffe/v2/federation"
	"github.com/stretchr/testify/require"
)

// benchParallelism multiplies GOMAXPROCS for the client goroutines, so that the
// server always has requests queued while a client goroutine waits.
const benchParallelism = 4

// BenchmarkEndpoint measures bundle endpoint requests per second over TLS with
// keep-alive connections. Three handlers serve the same document: ours, go-spiffe's
// federation.NewHandler, and a handler that writes the same bytes and headers from
// memory. The last one is the floor that HTTP and TLS allow.
func BenchmarkEndpoint(b *testing.B) {
	ca := newTestCA(b, "benchmark CA")
	cert := ca.issueWebCert(b, "127.0.0.1")
	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: ca.pool(), MinVersion: tls.VersionTLS12},
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 1024,
	}}
	b.Cleanup(client.CloseIdleConnections)

	for _, keys := range []int{1, 50} {
		source, doc := newBenchBundle(b, keys)
		ours := NewHandler("/")
		ours.SetBundle(doc)
		etag := ours.current.Load().etag
		theirs, err := spiffefederation.NewHandler(orgB, source)
		require.NoError(b, err)
		servers := []struct {
			name    string
			handler http.Handler
		}{
			{name: "bundlex", handler: ours},
			{name: "go-spiffe", handler: theirs},
			{name: "raw", handler: newRawBundleHandler(doc, etag)},
		}
		urls := make([]string, len(servers))
		for i, server := range servers {
			urls[i] = startTestEndpoint(b, server.handler, cert) + "/"
			requireSameBody(b, client, urls[i], doc)
		}
		for _, conditional := range []bool{false, true} {
			for i, server := range servers {
				name := fmt.Sprintf("keys=%d/if-none-match=%t/server=%s", keys,
					conditional, server.name)
				b.Run(name, func(b *testing.B) {
					header := http.Header{}
					if conditional {
						header.Set("If-None-Match", etag)
					}
					runEndpointRequests(b, client, urls[i], header)
				})
			}
		}
	}
}

func runEndpointRequests(b *testing.B, client *http.Client, url string, header http.Header) {
	b.SetParallelism(benchParallelism)
	b.ReportAllocs()
	b.ResetTimer()
	cpuStart := processCPUTime()
	b.RunParallel(func(pb *testing.PB) {
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url,
			nil)
		if err != nil {
			b.Error(err)
			return
		}
		req.Header = header.Clone()
		for pb.Next() {
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil || (resp.StatusCode != http.StatusOK &&
				resp.StatusCode != http.StatusNotModified) {
				b.Errorf("status %d, read error %v", resp.StatusCode, err)
				return
			}
		}
	})
	cpu := processCPUTime() - cpuStart
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	// Client and server share the process, so this is the CPU time of both sides.
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// newBenchBundle returns a go-spiffe bundle with keys X.509 authorities and its
// marshaled document.
func newBenchBundle(b *testing.B, keys int) (*spiffebundle.Bundle, []byte) {
	bundle := spiffebundle.New(orgB)
	for i := range keys {
		bundle.AddX509Authority(newTestCA(b, "authority "+strconv.Itoa(i)).cert)
	}
	bundle.SetSequenceNumber(1)
	bundle.SetRefreshHint(5 * time.Minute)
	doc, err := bundle.Marshal()
	require.NoError(b, err)
	return bundle, doc
}

// newRawBundleHandler returns a handler that writes doc with the same headers as
// Handler and does no other work than the If-None-Match comparison.
func newRawBundleHandler(doc []byte, etag string) http.Handler {
	contentLength := strconv.Itoa(len(doc))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		header := w.Header()
		header.Set("Etag", etag)
		header.Set("Cache-Control", bundleCacheControl)
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		header.Set("Content-Type", "application/json")
		header.Set("Content-Length", contentLength)
		_, _ = w.Write(doc)
	})
}

// requireSameBody checks that url serves doc, so that every server is measured on
// the same document.
func requireSameBody(b *testing.B, client *http.Client, url string, doc []byte) {
	resp, err := client.Get(url)
	require.NoError(b, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(b, err)
	require.Equal(b, http.StatusOK, resp.StatusCode)
	require.True(b, bytes.Equal(doc, body), "%s serves another document", url)
}
