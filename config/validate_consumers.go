package config

import (
	"fmt"
	"strings"
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
	base := "spiffe://" + c.TrustDomain
	for _, prefix := range c.Authority.MintAllowedIDPrefixes {
		if prefix != base && !strings.HasPrefix(prefix, base+"/") {
			errs = append(errs, invalid("authority.mint_allowed_id_prefixes", prefix,
				fmt.Sprintf("use prefixes in the local trust domain, such as %s/agents/", base)))
		}
	}
	return errs
}
