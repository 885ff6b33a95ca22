package authority

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Defaults of BuiltinConfig, applied to fields left at zero.
const (
	// DefaultCATTL is the lifetime of each X.509 CA certificate.
	DefaultCATTL = 7 * 24 * time.Hour
	// DefaultJWTKeyTTL is how long one JWT key signs before the next one takes over.
	DefaultJWTKeyTTL = 24 * time.Hour
	// DefaultX509SVIDMaxTTL is the longest lifetime of a minted X509-SVID.
	DefaultX509SVIDMaxTTL = time.Hour
	// DefaultJWTSVIDMaxTTL is the longest lifetime of a minted JWT-SVID.
	DefaultJWTSVIDMaxTTL = 5 * time.Minute
	// DefaultPublishLead is 4 times the default bundle refresh hint of 5 minutes,
	// inside the 3 to 5 refresh hints of SPIFFE Federation 4.1.
	DefaultPublishLead = 20 * time.Minute
)

// BuiltinConfig configures OpenBuiltin. Zero durations take the defaults above.
type BuiltinConfig struct {
	// Dir contains the private keys (mode 0600) and the state file. OpenBuiltin
	// creates it with mode 0700 and rejects an existing one that group or others
	// can access.
	Dir         string
	TrustDomain spiffeid.TrustDomain
	// CATTL is the lifetime of each X.509 CA certificate.
	CATTL time.Duration
	// JWTKeyTTL is how long a JWT key is used for signing.
	JWTKeyTTL time.Duration
	// X509SVIDMaxTTL and JWTSVIDMaxTTL cap the lifetime of minted SVIDs. The active
	// CA stops signing X509SVIDMaxTTL before its NotAfter, and a retired JWT key
	// stays published for JWTSVIDMaxTTL after it stopped signing.
	X509SVIDMaxTTL time.Duration
	JWTSVIDMaxTTL  time.Duration
	// PublishLead is how long a new key is published before it signs anything
	// (SPIFFE Federation 4.1: 3 to 5 refresh hints). The node passes 4 times the
	// refresh hint.
	PublishLead time.Duration
	// PrepareMargin is the extra time, on top of PublishLead, by which the next key
	// is prepared before the active one is due to stop signing, so that a late Tick
	// still switches on time. Default: PublishLead / 2.
	PrepareMargin time.Duration
	// Now returns the current time; nil means time.Now. Tests inject a fake clock.
	Now func() time.Time
	// Logger receives schedule events; nil discards them. Private keys are never logged.
	Logger *slog.Logger
}

// withDefaults returns a copy of cfg with defaults applied, or an error naming
// the first invalid field.
func (cfg BuiltinConfig) withDefaults() (BuiltinConfig, error) {
	if cfg.Dir == "" {
		return cfg, errors.New("authority: key directory is missing; set Dir")
	}
	if cfg.TrustDomain.IsZero() {
		return cfg, errors.New("authority: trust domain is missing; set TrustDomain")
	}
	durations := []struct {
		name  string
		value *time.Duration
		def   time.Duration
	}{
		{"CATTL", &cfg.CATTL, DefaultCATTL},
		{"JWTKeyTTL", &cfg.JWTKeyTTL, DefaultJWTKeyTTL},
		{"X509SVIDMaxTTL", &cfg.X509SVIDMaxTTL, DefaultX509SVIDMaxTTL},
		{"JWTSVIDMaxTTL", &cfg.JWTSVIDMaxTTL, DefaultJWTSVIDMaxTTL},
		{"PublishLead", &cfg.PublishLead, DefaultPublishLead},
		{"PrepareMargin", &cfg.PrepareMargin, 0},
	}
	for _, d := range durations {
		if *d.value < 0 {
			return cfg, fmt.Errorf("authority: %s is %s; it must be positive, or zero for "+
				"the default", d.name, *d.value)
		}
		if *d.value == 0 {
			*d.value = d.def
		}
	}
	if cfg.PrepareMargin == 0 {
		cfg.PrepareMargin = cfg.PublishLead / 2
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg, cfg.checkSchedule()
}

// checkSchedule rejects lifetimes too short for a rotation: the next key must
// be published for PublishLead before the active one stops signing.
func (cfg BuiltinConfig) checkSchedule() error {
	lead := cfg.PublishLead + cfg.PrepareMargin
	if minCA := cfg.X509SVIDMaxTTL + lead; cfg.CATTL <= minCA {
		return fmt.Errorf("authority: CATTL %s is too short; it must exceed X509SVIDMaxTTL + "+
			"PublishLead + PrepareMargin = %s", cfg.CATTL, minCA)
	}
	if cfg.JWTKeyTTL <= lead {
		return fmt.Errorf("authority: JWTKeyTTL %s is too short; it must exceed PublishLead + "+
			"PrepareMargin = %s", cfg.JWTKeyTTL, lead)
	}
	return nil
}
