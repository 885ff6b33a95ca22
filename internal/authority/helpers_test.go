package authority

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/jwtbundle"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/stretchr/testify/require"
)

var testTD = spiffeid.RequireTrustDomainFromString("org-a.test")

// Schedule used by most tests, short enough to reason about by hand.
const (
	testCATTL       = 10 * time.Hour
	testJWTKeyTTL   = 4 * time.Hour
	testX509MaxTTL  = time.Hour
	testJWTMaxTTL   = 5 * time.Minute
	testPublishLead = 20 * time.Minute
	testMargin      = 10 * time.Minute
)

// fakeClock is a settable clock shared by a Builtin and its test.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock(start time.Time) *fakeClock { return &fakeClock{now: start} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func (c *fakeClock) Advance(d time.Duration) { c.Set(c.Now().Add(d)) }

// logBuffer collects slog output of the code under test, safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// testConfig returns a configuration with the test schedule in a fresh
// directory that OpenBuiltin has to create.
func testConfig(t *testing.T, clock *fakeClock) BuiltinConfig {
	return BuiltinConfig{
		Dir:            filepath.Join(t.TempDir(), "authority"),
		TrustDomain:    testTD,
		CATTL:          testCATTL,
		JWTKeyTTL:      testJWTKeyTTL,
		X509SVIDMaxTTL: testX509MaxTTL,
		JWTSVIDMaxTTL:  testJWTMaxTTL,
		PublishLead:    testPublishLead,
		PrepareMargin:  testMargin,
		Now:            clock.Now,
	}
}

func openBuiltin(t *testing.T, cfg BuiltinConfig) *Builtin {
	t.Helper()
	b, err := OpenBuiltin(cfg)
	require.NoError(t, err)
	return b
}

// activeSerial and activeKID return the keys that sign now.
func activeSerial(t *testing.T, b *Builtin) string {
	t.Helper()
	ca, err := b.activeCA(b.now())
	require.NoError(t, err)
	return ca.rec.Serial
}

func activeKID(t *testing.T, b *Builtin) string {
	t.Helper()
	k, err := b.activeJWTKey(b.now())
	require.NoError(t, err)
	return k.rec.KeyID
}

// publishedSerials lists the serials of PublicKeys().X509Authorities in order.
func publishedSerials(keys PublicKeys) []string {
	var serials []string
	for _, c := range keys.X509Authorities {
		serials = append(serials, c.SerialNumber.Text(16))
	}
	return serials
}

func publishedKIDs(keys PublicKeys) []string {
	var kids []string
	for kid := range keys.JWTAuthorities {
		kids = append(kids, kid)
	}
	return kids
}

func bundlesOf(keys PublicKeys) (*x509bundle.Bundle, *jwtbundle.Bundle) {
	return x509bundle.FromX509Authorities(testTD, keys.X509Authorities),
		jwtbundle.FromJWTAuthorities(testTD, keys.JWTAuthorities)
}

func readDirNames(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names, nil
}
