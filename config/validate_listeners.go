package config

import (
	"fmt"
	"time"
)

// validateListenerLimits checks the read timeout and the connection cap of the
// bundle endpoint and of the verify API.
func (c *Config) validateListenerLimits() []error {
	return []error{
		checkReadTimeout("bundle_endpoint.read_timeout", c.BundleEndpoint.ReadTimeout),
		checkMaxConnections("bundle_endpoint.max_connections", c.BundleEndpoint.MaxConnections),
		checkReadTimeout("verify.read_timeout", c.Consumers.VerifyReadTimeout),
		checkMaxConnections("verify.max_connections", c.Consumers.VerifyMaxConnections),
	}
}

func checkReadTimeout(key string, d time.Duration) error {
	if d < MinReadTimeout || d > MaxReadTimeout {
		return invalid(key, d, fmt.Sprintf("use a duration from %s to %s, such as %s",
			MinReadTimeout, MaxReadTimeout, DefaultReadTimeout))
	}
	return nil
}

func checkMaxConnections(key string, n int) error {
	if n < 1 {
		return invalid(key, n, fmt.Sprintf("use at least 1, such as %d",
			DefaultMaxConnections))
	}
	return nil
}
