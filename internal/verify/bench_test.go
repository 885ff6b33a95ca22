package verify

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/stretchr/testify/require"
)

const (
	// benchClients is the number of concurrent HTTPS clients of BenchmarkVerifyJWT.
	benchClients = 64
	// benchRounds is how often BenchmarkVerifyJWT repeats its sub-benchmarks in
	// turn, so that load from other processes affects every variant alike.
	benchRounds = 3
)

// BenchmarkVerifyJWT measures JWT-SVID verifications per second of one ES256
// token, in rounds of four variants. The first two run in process:
// go-spiffe's jwtsvid.ParseAndValidate and the Verifier. The last two go through
// the HTTPS API, over HTTP/1.1 with benchClients keep-alive connections and over
// one HTTP/2 connection with benchClients concurrent requests. The clients run
// in the same process as the server. The benchmark logs the ratio of each HTTPS
// variant to go-spiffe for every round.
func BenchmarkVerifyJWT(b *testing.B) {
	f := newFixture(b)
	// The Verifier's clock is fixed at f.now, and go-spiffe uses time.Now, so the
	// token must stay valid for the whole run.
	c := claims(f.orgB.id("/billing/api"), f.now)
	c["exp"] = f.now.Add(time.Hour).Unix()
	token := f.orgB.mint(b, c)
	audience := []string{"billing"}
	body := jsonBody(b, JWTSVIDRequest{Token: token, Audience: audience})
	source := f.trust.Local.JWTBundle()

	// One server and two clients for every round, with every connection
	// established before timing starts: the benchmark measures verifications on
	// keep-alive connections, not TLS handshakes.
	url := startBenchAPI(b, f, f.verifier)
	// A second API whose verifier keeps no results, so that every request checks
	// the signature, as for tokens the service sees once.
	uncached, err := NewVerifier(TrustFunc(func() *Trust { return f.trust }),
		WithClock(func() time.Time { return f.now }), WithResultCache(0))
	require.NoError(b, err)
	uncachedURL := startBenchAPI(b, f, uncached)
	http1 := benchClient(b, f, false)
	http2 := benchClient(b, f, true)
	warmUp(b, http1, url, body)
	warmUp(b, http2, url, body)
	warmUp(b, http1, uncachedURL, body)

	var http1Ratios, http2Ratios, http1CPURatios, http2CPURatios, uncachedRatios []float64
	for round := range benchRounds {
		b.Logf("round %d", round+1)
		goSPIFFE := runParallel(b, "go-spiffe in process", func() error {
			_, err := jwtsvid.ParseAndValidate(token, source, audience)
			return err
		})
		runParallel(b, "verifier in process", func() error {
			_, err := f.verifier.VerifyJWTSVID(token, audience)
			return err
		})
		overHTTP1 := runParallel(b, "HTTPS API HTTP1", func() error {
			return postVerify(http1, url, body)
		})
		overHTTP2 := runParallel(b, "HTTPS API HTTP2", func() error {
			return postVerify(http2, url, body)
		})
		withoutCache := runParallel(b, "HTTPS API HTTP1 without result cache", func() error {
			return postVerify(http1, uncachedURL, body)
		})
		if goSPIFFE.rate > 0 && withoutCache.rate > 0 {
			uncachedRatios = append(uncachedRatios, withoutCache.rate/goSPIFFE.rate)
		}
		if goSPIFFE.rate > 0 && overHTTP1.rate > 0 && overHTTP2.rate > 0 {
			http1Ratios = append(http1Ratios, overHTTP1.rate/goSPIFFE.rate)
			http2Ratios = append(http2Ratios, overHTTP2.rate/goSPIFFE.rate)
			http1CPURatios = append(http1CPURatios, goSPIFFE.cpuPerOp/overHTTP1.cpuPerOp)
			http2CPURatios = append(http2CPURatios, goSPIFFE.cpuPerOp/overHTTP2.cpuPerOp)
		}
	}
	b.Logf("GOMAXPROCS %d, %d clients; HTTPS to go-spiffe in process per round, "+
		"by throughput: HTTP/1.1 %s (median %.2f), HTTP/2 %s (median %.2f); by CPU time "+
		"per verification: HTTP/1.1 %s (median %.2f), HTTP/2 %s (median %.2f)",
		runtime.GOMAXPROCS(0), benchClients,
		formatRatios(http1Ratios), median(http1Ratios),
		formatRatios(http2Ratios), median(http2Ratios),
		formatRatios(http1CPURatios), median(http1CPURatios),
		formatRatios(http2CPURatios), median(http2CPURatios))
	b.Logf("without the result cache, HTTP/1.1 to go-spiffe by throughput: %s (median %.2f)",
		formatRatios(uncachedRatios), median(uncachedRatios))
}

// measurement is the outcome of one sub-benchmark.
type measurement struct {
	// rate is verifications per second of wall-clock time.
	rate float64
	// cpuPerOp is the CPU time of the whole process per verification, in
	// microseconds, clients included.
	cpuPerOp float64
}

// runParallel runs verify from benchClients goroutines in a sub-benchmark. The
// result is zero when -bench skipped the sub-benchmark.
func runParallel(b *testing.B, name string, verify func() error) measurement {
	var result measurement
	b.Run(name, func(b *testing.B) {
		b.SetParallelism((benchClients + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
		cpuBefore := processCPUTime(b)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := verify(); err != nil {
					b.Error(err)
					return
				}
			}
		})
		cpu := processCPUTime(b) - cpuBefore
		result = measurement{
			rate:     float64(b.N) / b.Elapsed().Seconds(),
			cpuPerOp: float64(cpu.Microseconds()) / float64(b.N),
		}
		b.ReportMetric(result.rate, "verifications/s")
		b.ReportMetric(result.cpuPerOp, "cpu-µs/op")
	})
	return result
}

// processCPUTime returns the user and system CPU time of this process so far.
func processCPUTime(b *testing.B) time.Duration {
	var usage syscall.Rusage
	require.NoError(b, syscall.Getrusage(syscall.RUSAGE_SELF, &usage))
	return time.Duration(usage.Utime.Nano() + usage.Stime.Nano())
}

func formatRatios(ratios []float64) string {
	parts := make([]string, len(ratios))
	for i, ratio := range ratios {
		parts[i] = fmt.Sprintf("%.2f", ratio)
	}
	return strings.Join(parts, " ")
}

func median(values []float64) float64 {
	if len(values) == 0 {
		return 0
	}
	sorted := slices.Sorted(slices.Values(values))
	return sorted[len(sorted)/2]
}

// startBenchAPI serves the fixture's API over TLS with logging at Info, so that
// successful verifications are not logged, and returns the JWT-SVID URL.
func startBenchAPI(b *testing.B, f *fixture, verifier *Verifier) string {
	b.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	server := startTLSServer(b, NewHandler(verifier, logger), serverCertificate(b, f.orgB),
		logger)
	return "https://" + server.Addr().String() + JWTSVIDPath
}

// benchClient returns a client that trusts the fixture's server. Over HTTP/1.1 it
// keeps one connection per concurrent client; over HTTP/2 all requests share
// one connection.
func benchClient(b *testing.B, f *fixture, http2 bool) *http.Client {
	roots := x509.NewCertPool()
	roots.AddCert(f.orgB.ca.cert)
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		MaxIdleConnsPerHost: benchClients,
		ForceAttemptHTTP2:   http2,
	}}
	b.Cleanup(client.CloseIdleConnections)
	return client
}

// warmUp sends benchClients requests at once, so that the client opens its
// connections before timing starts.
func warmUp(b *testing.B, client *http.Client, url, body string) {
	b.Helper()
	errs := make(chan error, benchClients)
	for range benchClients {
		go func() { errs <- postVerify(client, url, body) }()
	}
	for range benchClients {
		require.NoError(b, <-errs)
	}
}

var validPrefix = []byte(`{"valid":true`)

// postVerify sends one request and checks that the response reports a valid
// credential.
func postVerify(client *http.Client, url, body string) error {
	resp, err := client.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || !bytes.HasPrefix(raw, validPrefix) {
		return fmt.Errorf("verification API returned %s: %s", resp.Status, raw)
	}
	return nil
}
