package authority

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/stretchr/testify/require"
)

func TestOpenBuiltinCreatesFirstKeys(t *testing.T) {
	t0 := time.Date(2030, 1, 2, 3, 0, 0, 0, time.UTC)
	clock := newFakeClock(t0)
	cfg := testConfig(t, clock)
	b := openBuiltin(t, cfg)

	info, err := os.Stat(cfg.Dir)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), info.Mode().Perm(), "key directory mode")

	entries, err := os.ReadDir(cfg.Dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
		fi, err := e.Info()
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "mode of %s", e.Name())
	}
	require.Len(t, names, 3, "files: %v", names)
	require.Contains(t, names, StateFileName)

	keys := b.PublicKeys()
	require.Len(t, keys.X509Authorities, 1)
	require.Len(t, keys.JWTAuthorities, 1)
	ca := keys.X509Authorities[0]
	require.Contains(t, names, caKeyFileName(ca.SerialNumber.Text(16)))
	for kid, pub := range keys.JWTAuthorities {
		require.Contains(t, names, jwtKeyFileName(kid))
		require.Regexp(t, regexp.MustCompile(`^[A-Za-z0-9_-]{22}$`), kid)
		ecKey, ok := pub.(*ecdsa.PublicKey)
		require.True(t, ok, "JWT key type %T", pub)
		require.Equal(t, elliptic.P256(), ecKey.Curve)
	}

	t.Run("CA certificate profile", func(t *testing.T) {
		require.NoError(t, ca.CheckSignatureFrom(ca), "self-signed")
		require.True(t, ca.IsCA)
		require.True(t, ca.BasicConstraintsValid)
		require.Equal(t, x509.KeyUsageCertSign|x509.KeyUsageCRLSign, ca.KeyUsage)
		require.Len(t, ca.URIs, 1)
		require.Equal(t, "spiffe://org-a.test", ca.URIs[0].String())
		require.Positive(t, ca.SerialNumber.Sign())
		require.LessOrEqual(t, ca.SerialNumber.BitLen(), 128)
		require.Len(t, ca.SubjectKeyId, 20)
		require.Equal(t, t0.Add(testCATTL), ca.NotAfter)
		require.False(t, ca.NotBefore.After(t0))
		require.Equal(t, x509.ECDSA, ca.PublicKeyAlgorithm)
		require.Equal(t, elliptic.P256(), ca.PublicKey.(*ecdsa.PublicKey).Curve)
	})

	t.Run("first keys sign at once", func(t *testing.T) {
		_, err := b.MintX509SVID(testTD.ID(), 0)
		require.Error(t, err, "a root ID is no workload")
		svid, err := b.MintX509SVID(spiffeIDOf(t, "/first"), 0)
		require.NoError(t, err)
		require.Equal(t, ca.SubjectKeyId, svid.Certificates[0].AuthorityKeyId)
	})
}

func TestOpenBuiltinReopenKeepsKeys(t *testing.T) {
	t0 := time.Date(2030, 1, 2, 3, 0, 0, 0, time.UTC)
	clock := newFakeClock(t0)
	cfg := testConfig(t, clock)
	b := openBuiltin(t, cfg)
	clock.Advance(time.Hour)
	require.NoError(t, b.Rotate())
	clock.Advance(testPublishLead)
	_, err := b.Tick()
	require.NoError(t, err)
	require.NoError(t, b.Rotate(), "leaves a prepared key in the state")
	before := b.PublicKeys()
	require.Len(t, before.X509Authorities, 3)
	require.Len(t, before.JWTAuthorities, 3)

	reopened := openBuiltin(t, cfg)
	after := reopened.PublicKeys()
	require.Len(t, after.X509Authorities, len(before.X509Authorities))
	for i := range before.X509Authorities {
		require.Equal(t, before.X509Authorities[i].Raw, after.X509Authorities[i].Raw)
	}
	require.Equal(t, before.JWTAuthorities, after.JWTAuthorities)
	require.Equal(t, activeSerial(t, b), activeSerial(t, reopened))
	require.Equal(t, activeKID(t, b), activeKID(t, reopened))
	require.Equal(t, b.NextEvent(), reopened.NextEvent())

	// The reopened schedule activates the prepared keys at the same time.
	clock.Advance(testPublishLead)
	_, err = b.Tick()
	require.NoError(t, err)
	_, err = reopened.Tick()
	require.NoError(t, err)
	require.Equal(t, activeKID(t, b), activeKID(t, reopened))
	require.Equal(t, activeSerial(t, b), activeSerial(t, reopened))
}

func TestOpenBuiltinRaisesMaxJWTTTL(t *testing.T) {
	clock := newFakeClock(time.Date(2030, 1, 2, 3, 0, 0, 0, time.UTC))
	cfg := testConfig(t, clock)
	b := openBuiltin(t, cfg)
	oldKID := activeKID(t, b)

	cfg.JWTSVIDMaxTTL = 30 * time.Minute
	b = openBuiltin(t, cfg)
	require.NoError(t, b.Rotate())
	clock.Advance(testPublishLead)
	_, err := b.Tick()
	require.NoError(t, err)
	require.NotEqual(t, oldKID, activeKID(t, b))

	// A token signed just before the switch lives 30 minutes, so the old key
	// stays published that long although the first run allowed only 5.
	clock.Advance(29 * time.Minute)
	_, err = b.Tick()
	require.NoError(t, err)
	require.Contains(t, b.PublicKeys().JWTAuthorities, oldKID)
	clock.Advance(time.Minute)
	_, err = b.Tick()
	require.NoError(t, err)
	require.NotContains(t, b.PublicKeys().JWTAuthorities, oldKID)
}

func TestOpenBuiltinRejectsBadInput(t *testing.T) {
	clock := newFakeClock(time.Date(2030, 1, 2, 3, 0, 0, 0, time.UTC))
	tests := []struct {
		name string
		// damage changes the directory of a working authority before reopening.
		damage func(t *testing.T, cfg *BuiltinConfig)
		want   []string
	}{
		{"state file not JSON", func(t *testing.T, cfg *BuiltinConfig) {
			writeTestFile(t, filepath.Join(cfg.Dir, StateFileName), "{not json")
		}, []string{"state.json is invalid", "restore it from backup",
			"move the whole directory"}},
		{"state file truncated", func(t *testing.T, cfg *BuiltinConfig) {
			writeTestFile(t, filepath.Join(cfg.Dir, StateFileName), "")
		}, []string{"state.json is invalid", "restore it from backup"}},
		{"unsupported state version", func(t *testing.T, cfg *BuiltinConfig) {
			editState(t, cfg.Dir, `"version": 1`, `"version": 9`)
		}, []string{"state.json is invalid", "version 9 is not supported"}},
		{"unknown key status", func(t *testing.T, cfg *BuiltinConfig) {
			editState(t, cfg.Dir, `"status": "active"`, `"status": "paused"`)
		}, []string{"state.json is invalid", `status "paused" is unknown`}},
		{"other trust domain", func(t *testing.T, cfg *BuiltinConfig) {
			editState(t, cfg.Dir, `"trust_domain": "org-a.test"`, `"trust_domain": "org-b.test"`)
		}, []string{"belongs to trust domain \"org-b.test\"", "directory of its own"}},
		{"missing CA key file", func(t *testing.T, cfg *BuiltinConfig) {
			removeMatching(t, cfg.Dir, caKeyPrefix)
		}, []string{caKeyPrefix, "no such file", "restore the file from backup"}},
		{"CA key from elsewhere", func(t *testing.T, cfg *BuiltinConfig) {
			other := openBuiltin(t, testConfig(t, clock))
			name := matching(t, cfg.Dir, caKeyPrefix)
			data, err := os.ReadFile(filepath.Join(other.cfg.Dir, matching(t, other.cfg.Dir,
				caKeyPrefix)))
			require.NoError(t, err)
			writeTestFile(t, filepath.Join(cfg.Dir, name), string(data))
		}, []string{"does not match the certificate", "same backup"}},
		{"JWT key not PEM", func(t *testing.T, cfg *BuiltinConfig) {
			writeTestFile(t, filepath.Join(cfg.Dir, matching(t, cfg.Dir, jwtKeyPrefix)), "x")
		}, []string{jwtKeyPrefix, "not a PEM", "restore the file from backup"}},
		{"key file readable by others", func(t *testing.T, cfg *BuiltinConfig) {
			require.NoError(t, os.Chmod(filepath.Join(cfg.Dir, matching(t, cfg.Dir,
				jwtKeyPrefix)), 0o644))
		}, []string{"has mode 0644", "chmod 600"}},
		{"state file deleted", func(t *testing.T, cfg *BuiltinConfig) {
			require.NoError(t, os.Remove(filepath.Join(cfg.Dir, StateFileName)))
		}, []string{"contains key files", "but no state.json", "delete the key files"}},
		{"directory open to group", func(t *testing.T, cfg *BuiltinConfig) {
			require.NoError(t, os.Chmod(cfg.Dir, 0o750))
		}, []string{"has mode 0750", "chmod 700"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t, clock)
			openBuiltin(t, cfg)
			tt.damage(t, &cfg)
			_, err := OpenBuiltin(cfg)
			require.Error(t, err)
			require.Contains(t, err.Error(), cfg.Dir, "error names the file")
			for _, want := range tt.want {
				require.Contains(t, err.Error(), want)
			}
		})
	}
}

func TestOpenBuiltinRejectsBadConfig(t *testing.T) {
	clock := newFakeClock(time.Date(2030, 1, 2, 3, 0, 0, 0, time.UTC))
	tests := []struct {
		name   string
		modify func(cfg *BuiltinConfig)
		want   string
	}{
		{"directory missing", func(cfg *BuiltinConfig) { cfg.Dir = "" }, "set Dir"},
		{"trust domain missing", func(cfg *BuiltinConfig) {
			cfg.TrustDomain = spiffeid.TrustDomain{}
		}, "set TrustDomain"},
		{"negative CA TTL", func(cfg *BuiltinConfig) { cfg.CATTL = -time.Hour },
			"CATTL is -1h0m0s; it must be positive"},
		{"CA TTL too short", func(cfg *BuiltinConfig) { cfg.CATTL = 90 * time.Minute },
			"CATTL 1h30m0s is too short; it must exceed X509SVIDMaxTTL + PublishLead + " +
				"PrepareMargin = 1h30m0s"},
		{"JWT key TTL too short", func(cfg *BuiltinConfig) { cfg.JWTKeyTTL = 30 * time.Minute },
			"JWTKeyTTL 30m0s is too short"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t, clock)
			tt.modify(&cfg)
			_, err := OpenBuiltin(cfg)
			require.ErrorContains(t, err, tt.want)
		})
	}

	t.Run("zero values take defaults", func(t *testing.T) {
		cfg, err := BuiltinConfig{Dir: "x", TrustDomain: testTD}.withDefaults()
		require.NoError(t, err)
		require.Equal(t, DefaultCATTL, cfg.CATTL)
		require.Equal(t, DefaultJWTKeyTTL, cfg.JWTKeyTTL)
		require.Equal(t, DefaultX509SVIDMaxTTL, cfg.X509SVIDMaxTTL)
		require.Equal(t, DefaultJWTSVIDMaxTTL, cfg.JWTSVIDMaxTTL)
		require.Equal(t, DefaultPublishLead, cfg.PublishLead)
		require.Equal(t, DefaultPublishLead/2, cfg.PrepareMargin)
	})
}

func spiffeIDOf(t *testing.T, path string) spiffeid.ID {
	t.Helper()
	id, err := spiffeid.FromPath(testTD, path)
	require.NoError(t, err)
	return id
}

func writeTestFile(t *testing.T, path, content string) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
}

func editState(t *testing.T, dir, old, replacement string) {
	t.Helper()
	path := filepath.Join(dir, StateFileName)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Contains(t, string(data), old)
	writeTestFile(t, path, strings.Replace(string(data), old, replacement, 1))
}

// matching returns the one file in dir whose name starts with prefix.
func matching(t *testing.T, dir, prefix string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var found []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			found = append(found, e.Name())
		}
	}
	require.Len(t, found, 1, "files starting with %s in %s", prefix, dir)
	return found[0]
}

func removeMatching(t *testing.T, dir, prefix string) {
	t.Helper()
	require.NoError(t, os.Remove(filepath.Join(dir, matching(t, dir, prefix))))
}
