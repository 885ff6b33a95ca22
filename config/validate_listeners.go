package config

import (
	"fmt"
	"time"
)

// validateListenerLimits checks the read timeout and the connection cap of the
// bundle endpoint, the verify API and the health listener.
func (c *Config) validateListenerLimits() []error {
	return []error{
		checkReadTimeout("bundle_endpoint.read_timeout", c.BundleEndpoint.ReadTimeout),
		checkMaxConnections("bundle_endpoint.max_connections", c.BundleEndpoint.MaxConnections,
			DefaultMaxConnections),
		checkReadTimeout("verify.read_timeout", c.Consumers.VerifyReadTimeout),
		checkMaxConnections("verify.max_connections", c.Consumers.VerifyMaxConnections,
			DefaultMaxConnections),
		checkReadTimeout("health.read_timeout", c.Health.ReadTimeout),
		checkMaxConnections("health.max_connections", c.Health.MaxConnections,
			DefaultHealthMaxConnections),
	}
}

func checkReadTimeout(key string, d time.Duration) error {
	if d < MinReadTimeout || d > MaxReadTimeout {
		return invalid(key, d, fmt.Sprintf("use a duration from %s to %s, such as %s",
			MinReadTimeout, MaxReadTimeout, DefaultReadTimeout))
	}
	return nil
}

func checkMaxConnections(key string, n, example int) error {
	if n < 1 {
		return invalid(key, n, fmt.Sprintf("use at least 1, such as %d", example))
	}
	return nil
}
