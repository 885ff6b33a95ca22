package verify

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/stretchr/testify/require"
)

// handlerBenchTokens is how many distinct tokens BenchmarkHandlerJWTSVID cycles
// through.
const handlerBenchTokens = 512

// discardResponse is a ResponseWriter that keeps the status and drops the body.
type discardResponse struct {
	header http.Header
	status int
}

func (d *discardResponse) Header() http.Header         { return d.header }
func (d *discardResponse) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardResponse) WriteHeader(status int)      { d.status = status }

// BenchmarkHandlerJWTSVID measures one goroutine's JWT-SVID verifications
// without HTTP and TLS: go-spiffe's jwtsvid.ParseAndValidate, the Verifier, and
// the Handler's ServeHTTP with a prepared request. "distinct" variants use a
// Verifier without result cache, so that every call checks a signature as for a
// token seen once. Use it with -cpuprofile and -benchmem to see the server's
// cost per verification apart from the network.
func BenchmarkHandlerJWTSVID(b *testing.B) {
	f := newFixture(b)
	tokens := make([]string, handlerBenchTokens)
	bodies := make([][]byte, handlerBenchTokens)
	for i := range tokens {
		c := claims(f.orgB.id(fmt.Sprintf("/workload/%d", i)), f.now)
		c["exp"] = f.now.Add(time.Hour).Unix()
		tokens[i] = f.orgB.mint(b, c)
		bodies[i] = []byte(jsonBody(b, JWTSVIDRequest{Token: tokens[i],
			Audience: Audience{"billing"}}))
	}
	audience := []string{"billing"}
	uncached, err := NewVerifier(TrustFunc(func() *Trust { return f.trust }),
		WithClock(func() time.Time { return f.now }), WithResultCache(0))
	require.NoError(b, err)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))

	b.Run("go-spiffe distinct", func(b *testing.B) {
		source := f.trust.Local.JWTBundle()
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, err := jwtsvid.ParseAndValidate(tokens[i%len(tokens)], source,
				audience); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("verifier distinct", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, err := uncached.VerifyJWTSVID(tokens[i%len(tokens)], audience); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("handler distinct", func(b *testing.B) {
		serveBench(b, NewHandler(uncached, logger), bodies)
	})
	b.Run("handler repeated", func(b *testing.B) {
		serveBench(b, NewHandler(f.verifier, logger), bodies[:1])
	})
}

// serveBench calls handler with each body in turn and checks every status.
func serveBench(b *testing.B, handler http.Handler, bodies [][]byte) {
	target := &url.URL{Path: JWTSVIDPath}
	header := http.Header{"Content-Type": {"application/json"}}
	response := &discardResponse{}
	var reader bytes.Reader
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		body := bodies[i%len(bodies)]
		reader.Reset(body)
		req := &http.Request{Method: http.MethodPost, URL: target, Header: header,
			Body: io.NopCloser(&reader), ContentLength: int64(len(body)),
			RequestURI: JWTSVIDPath, Host: "verify.test"}
		response.header = http.Header{}
		handler.ServeHTTP(response, req)
		if response.status != http.StatusOK {
			b.Fatalf("status %d", response.status)
		}
	}
}
