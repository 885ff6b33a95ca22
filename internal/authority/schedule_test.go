package authority

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/stretchr/testify/require"
)

// keyLabels names keys ca1, ca2, ... and j1, j2, ... in order of first
// appearance, so that expected schedules read as plain lists.
type keyLabels struct {
	names map[string]string
	cas   int
	jwts  int
}

func newKeyLabels() *keyLabels { return &keyLabels{names: map[string]string{}} }

func (l *keyLabels) label(id string, ca bool) string {
	if name, ok := l.names[id]; ok {
		return name
	}
	if ca {
		l.cas++
		l.names[id] = fmt.Sprintf("ca%d", l.cas)
	} else {
		l.jwts++
		l.names[id] = fmt.Sprintf("j%d", l.jwts)
	}
	return l.names[id]
}

// scheduleView is what a schedule step is checked against.
type scheduleView struct {
	CAs       []string // published CAs in publication order
	ActiveCA  string
	JWTs      []string // published JWT keys, sorted
	ActiveJWT string
}

func (l *keyLabels) view(t *testing.T, b *Builtin) scheduleView {
	t.Helper()
	keys := b.PublicKeys()
	var v scheduleView
	for _, serial := range publishedSerials(keys) {
		v.CAs = append(v.CAs, l.label(serial, true))
	}
	for _, kid := range publishedKIDs(keys) {
		v.JWTs = append(v.JWTs, l.label(kid, false))
	}
	sort.Strings(v.JWTs)
	v.ActiveCA = l.label(activeSerial(t, b), true)
	v.ActiveJWT = l.label(activeKID(t, b), false)
	return v
}

// signingKeys mints one SVID of each kind, verifies both against PublicKeys
// and returns the labels of the keys that signed them.
func (l *keyLabels) signingKeys(t *testing.T, b *Builtin, now time.Time) (string, string) {
	t.Helper()
	keys := b.PublicKeys()
	x509Bundle, _ := bundlesOf(keys)
	svid, err := b.MintX509SVID(spiffeIDOf(t, "/workload"), 0)
	require.NoError(t, err)
	_, _, err = x509svid.Verify(svid.Certificates, x509Bundle, x509svid.WithTime(now))
	require.NoError(t, err)
	var caLabel string
	for _, ca := range keys.X509Authorities {
		if svid.Certificates[0].CheckSignatureFrom(ca) == nil {
			caLabel = l.label(ca.SerialNumber.Text(16), true)
		}
	}

	// jwtsvid.ParseAndValidate checks exp against the real clock, so with the
	// fake clock the signature and claims are checked with go-jose directly.
	token, err := b.MintJWTSVID(spiffeIDOf(t, "/workload"), []string{"aud"}, 0)
	require.NoError(t, err)
	parsed, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256})
	require.NoError(t, err)
	kid := parsed.Headers[0].KeyID
	pub, ok := keys.JWTAuthorities[kid]
	require.True(t, ok, "token kid %s is not published", kid)
	var claims jwt.Claims
	require.NoError(t, parsed.Claims(pub, &claims))
	require.NoError(t, claims.Validate(jwt.Expected{AnyAudience: []string{"aud"}, Time: now}))
	return caLabel, l.label(kid, false)
}

func TestTickFullSchedule(t *testing.T) {
	t0 := time.Date(2030, 1, 2, 3, 0, 0, 0, time.UTC)
	clock := newFakeClock(t0)
	b := openBuiltin(t, testConfig(t, clock))
	labels := newKeyLabels()
	at := func(h, m int) time.Duration {
		return time.Duration(h)*time.Hour + time.Duration(m)*time.Minute
	}
	// Test schedule: CA TTL 10h, X509-SVID max 1h, JWT key TTL 4h, JWT-SVID max
	// 5m, PublishLead 20m, PrepareMargin 10m. So a CA is replaced 1h before its
	// NotAfter and its successor prepared 30m before that, and a JWT key is
	// replaced 4h after activation with its successor prepared 30m before.
	steps := []struct {
		name    string
		offset  time.Duration
		changed bool
		want    scheduleView
		next    time.Duration
	}{
		{"first keys only", 0, false,
			scheduleView{[]string{"ca1"}, "ca1", []string{"j1"}, "j1"}, at(3, 30)},
		{"JWT key j2 prepared", at(3, 30), true,
			scheduleView{[]string{"ca1"}, "ca1", []string{"j1", "j2"}, "j1"}, at(4, 0)},
		{"j2 waits for switch", at(3, 59), false,
			scheduleView{[]string{"ca1"}, "ca1", []string{"j1", "j2"}, "j1"}, at(4, 0)},
		{"j2 active j1 retired", at(4, 0), false,
			scheduleView{[]string{"ca1"}, "ca1", []string{"j1", "j2"}, "j2"}, at(4, 5)},
		{"j1 kept until tokens expire", at(4, 4), false,
			scheduleView{[]string{"ca1"}, "ca1", []string{"j1", "j2"}, "j2"}, at(4, 5)},
		{"j1 removed", at(4, 5), true,
			scheduleView{[]string{"ca1"}, "ca1", []string{"j2"}, "j2"}, at(7, 30)},
		{"j3 prepared", at(7, 30), true,
			scheduleView{[]string{"ca1"}, "ca1", []string{"j2", "j3"}, "j2"}, at(8, 0)},
		{"j3 active", at(8, 0), false,
			scheduleView{[]string{"ca1"}, "ca1", []string{"j2", "j3"}, "j3"}, at(8, 5)},
		{"j2 removed", at(8, 5), true,
			scheduleView{[]string{"ca1"}, "ca1", []string{"j3"}, "j3"}, at(8, 30)},
		{"CA ca2 prepared", at(8, 30), true,
			scheduleView{[]string{"ca1", "ca2"}, "ca1", []string{"j3"}, "j3"}, at(9, 0)},
		{"ca2 waits for switch", at(8, 59), false,
			scheduleView{[]string{"ca1", "ca2"}, "ca1", []string{"j3"}, "j3"}, at(9, 0)},
		{"ca2 active ca1 retired", at(9, 0), false,
			scheduleView{[]string{"ca1", "ca2"}, "ca2", []string{"j3"}, "j3"}, at(10, 0)},
		{"ca1 removed at NotAfter", at(10, 0), true,
			scheduleView{[]string{"ca2"}, "ca2", []string{"j3"}, "j3"}, at(11, 30)},
		{"j4 prepared", at(11, 30), true,
			scheduleView{[]string{"ca2"}, "ca2", []string{"j3", "j4"}, "j3"}, at(12, 0)},
	}
	var lastLeaf *x509svid.SVID
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			now := t0.Add(step.offset)
			clock.Set(now)
			changed, err := b.Tick()
			require.NoError(t, err)
			require.Equal(t, step.changed, changed, "PublicKeys changed")
			require.Equal(t, step.want, labels.view(t, b))
			require.Equal(t, t0.Add(step.next), b.NextEvent())

			caLabel, jwtLabel := labels.signingKeys(t, b, now)
			require.Equal(t, step.want.ActiveCA, caLabel, "CA that signed the X509-SVID")
			require.Equal(t, step.want.ActiveJWT, jwtLabel, "key that signed the JWT-SVID")

			// The leaf of the previous step still verifies: a retired CA stays
			// published for as long as its leaves are valid.
			if lastLeaf != nil && now.Before(lastLeaf.Certificates[0].NotAfter) {
				x509Bundle, _ := bundlesOf(b.PublicKeys())
				_, _, err := x509svid.Verify(lastLeaf.Certificates, x509Bundle,
					x509svid.WithTime(now))
				require.NoError(t, err, "leaf minted at the previous step")
			}
			lastLeaf, err = b.MintX509SVID(spiffeIDOf(t, "/previous"), 0)
			require.NoError(t, err)
		})
	}
}

func TestTickLateWaitsPublishLead(t *testing.T) {
	t0 := time.Date(2030, 1, 2, 3, 0, 0, 0, time.UTC)
	clock := newFakeClock(t0)
	b := openBuiltin(t, testConfig(t, clock))
	labels := newKeyLabels()
	labels.view(t, b)

	// No Tick for 5h: j1 is past its planned switch at 4h, but j2 is only
	// published now, so j1 keeps signing for another PublishLead.
	clock.Set(t0.Add(5 * time.Hour))
	changed, err := b.Tick()
	require.NoError(t, err)
	require.True(t, changed)
	require.Equal(t, []string{"j1", "j2"}, labels.view(t, b).JWTs)
	require.Equal(t, t0.Add(5*time.Hour+testPublishLead), b.NextEvent())
	_, jwtLabel := labels.signingKeys(t, b, clock.Now())
	require.Equal(t, "j1", jwtLabel)

	clock.Advance(testPublishLead - time.Second)
	_, err = b.Tick()
	require.NoError(t, err)
	require.Equal(t, "j1", labels.view(t, b).ActiveJWT)
	clock.Advance(time.Second)
	_, err = b.Tick()
	require.NoError(t, err)
	require.Equal(t, "j2", labels.view(t, b).ActiveJWT)

	// At 9h30 ca1 is past its switch at 9h: ca2 is prepared now and ca1 signs
	// until 9h50, its leaves capped at its NotAfter of 10h.
	clock.Set(t0.Add(9*time.Hour + 30*time.Minute))
	_, err = b.Tick()
	require.NoError(t, err)
	view := labels.view(t, b)
	require.Equal(t, []string{"ca1", "ca2"}, view.CAs)
	require.Equal(t, "ca1", view.ActiveCA)
	svid, err := b.MintX509SVID(spiffeIDOf(t, "/late"), 0)
	require.NoError(t, err)
	require.Equal(t, t0.Add(testCATTL), svid.Certificates[0].NotAfter)

	clock.Set(t0.Add(9*time.Hour + 50*time.Minute))
	_, err = b.Tick()
	require.NoError(t, err)
	require.Equal(t, "ca2", labels.view(t, b).ActiveCA)
}

func TestTickAfterCAExpired(t *testing.T) {
	t0 := time.Date(2030, 1, 2, 3, 0, 0, 0, time.UTC)
	clock := newFakeClock(t0)
	b := openBuiltin(t, testConfig(t, clock))
	first := b.PublicKeys().X509Authorities[0]

	// Stopped for longer than the CA lifetime: the only CA has expired and
	// its successor may not sign before it has been published for PublishLead.
	clock.Set(t0.Add(11 * time.Hour))
	changed, err := b.Tick()
	require.NoError(t, err)
	require.True(t, changed)
	keys := b.PublicKeys()
	require.Len(t, keys.X509Authorities, 1)
	require.NotEqual(t, first.Raw, keys.X509Authorities[0].Raw)
	_, err = b.MintX509SVID(spiffeIDOf(t, "/gap"), 0)
	require.ErrorContains(t, err, "no usable X.509 CA for org-a.test")
	require.ErrorContains(t, err, "call Tick")
	_, err = b.MintJWTSVID(spiffeIDOf(t, "/gap"), []string{"aud"}, 0)
	require.NoError(t, err, "a JWT key does not expire")

	clock.Advance(testPublishLead)
	_, err = b.Tick()
	require.NoError(t, err)
	svid, err := b.MintX509SVID(spiffeIDOf(t, "/gap"), 0)
	require.NoError(t, err)
	require.Equal(t, keys.X509Authorities[0].SubjectKeyId, svid.Certificates[0].AuthorityKeyId)
}

func TestRotatePublishesBeforeUse(t *testing.T) {
	t0 := time.Date(2030, 1, 2, 3, 0, 0, 0, time.UTC)
	clock := newFakeClock(t0)
	cfg := testConfig(t, clock)
	b := openBuiltin(t, cfg)
	labels := newKeyLabels()
	labels.view(t, b)

	clock.Set(t0.Add(time.Hour))
	require.NoError(t, b.Rotate())
	require.Equal(t, scheduleView{[]string{"ca1", "ca2"}, "ca1", []string{"j1", "j2"}, "j1"},
		labels.view(t, b), "published at once, not signing")
	require.Equal(t, t0.Add(time.Hour+testPublishLead), b.NextEvent())

	// A second Rotate replaces the prepared keys, which have signed nothing.
	clock.Advance(5 * time.Minute)
	require.NoError(t, b.Rotate())
	require.Equal(t, scheduleView{[]string{"ca1", "ca3"}, "ca1", []string{"j1", "j3"}, "j1"},
		labels.view(t, b))
	require.Len(t, keyFiles(t, cfg.Dir), 4, "key files of ca2 and j2 deleted")
	rotatedAt := clock.Now()

	clock.Set(rotatedAt.Add(testPublishLead - time.Second))
	changed, err := b.Tick()
	require.NoError(t, err)
	require.False(t, changed)
	caLabel, jwtLabel := labels.signingKeys(t, b, clock.Now())
	require.Equal(t, "ca1", caLabel)
	require.Equal(t, "j1", jwtLabel)

	clock.Set(rotatedAt.Add(testPublishLead))
	_, err = b.Tick()
	require.NoError(t, err)
	caLabel, jwtLabel = labels.signingKeys(t, b, clock.Now())
	require.Equal(t, "ca3", caLabel)
	require.Equal(t, "j3", jwtLabel)
	require.Equal(t, []string{"ca1", "ca3"}, labels.view(t, b).CAs, "ca1 kept until NotAfter")

	t.Run("clock moved back", func(t *testing.T) {
		clock.Set(rotatedAt.Add(testPublishLead - time.Minute))
		_, err := b.MintX509SVID(spiffeIDOf(t, "/early"), 0)
		require.ErrorContains(t, err, "may sign only from")
		_, err = b.MintJWTSVID(spiffeIDOf(t, "/early"), []string{"aud"}, 0)
		require.ErrorContains(t, err, "may sign only from")
	})
}

func keyFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := readDirNames(dir)
	require.NoError(t, err)
	var keys []string
	for _, name := range entries {
		if name != StateFileName {
			keys = append(keys, name)
		}
	}
	return keys
}
