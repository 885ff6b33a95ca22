package config

import (
	"fmt"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// validateConsumers checks the Workload API socket and SVID settings, the verify
// listener and the mint prefixes.
func (c *Config) validateConsumers() []error {
	var errs []error
	if p := c.Consumers.WorkloadAPISocket; len(p) > MaxSocketPathLength {
		errs = append(errs, invalid("workload_api.socket_path", p, fmt.Sprintf(
			"use a path of at most %d bytes, the limit of Unix socket paths",
			MaxSocketPathLength)))
	}
	errs = append(errs, c.validateWorkloadSVIDs()...)
	errs = append(errs, checkHostPort("verify.address", c.Consumers.VerifyAddress, true))
	if skew := c.Consumers.VerifyClockSkew; skew < 0 || skew > MaxVerifyClockSkew {
		errs = append(errs, invalid("verify.clock_skew", skew, fmt.Sprintf(
			"use a duration from 0s to %s", MaxVerifyClockSkew)))
	}
	// Without a valid trust domain, the trust_domain error already names the cause.
	if td, err := spiffeid.TrustDomainFromString(c.TrustDomain); err == nil {
		errs = append(errs, checkIDPrefixes("authority.mint_allowed_id_prefixes", td,
			c.Authority.MintAllowedIDPrefixes)...)
	}
	return errs
}
