package config

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Length limits of SPIFFE-ID 2.3, which go-spiffe v2.9.0 does not enforce.
const (
	MaxTrustDomainLength = 255
	MaxSPIFFEIDLength    = 2048
)

// MaxSocketPathLength is the longest Unix socket path Linux accepts: sun_path
// has 108 bytes and one is the terminating NUL.
// NOTE: macOS and the BSDs allow only 103 bytes, which this check does not catch.
const MaxSocketPathLength = 107

// Validate checks every key and the rules between keys. It returns all
// problems together, one per line. Each names the key and, for a bad value, the
// value and what is accepted. Call FillDerived first on a Config that did not come from Load.
func (c *Config) Validate() error {
	var errs []error
	errs = append(errs, c.validateNode()...)
	errs = append(errs, c.validateEndpoint()...)
	errs = append(errs, c.validateAuthority()...)
	errs = append(errs, c.validateFederation()...)
	errs = append(errs, c.validateRelationships()...)
	errs = append(errs, c.validateCluster()...)
	errs = append(errs, c.validateRaft()...)
	errs = append(errs, c.validateConsumers()...)
	errs = append(errs, c.validateListenerLimits()...)
	return errors.Join(errs...)
}

func (c *Config) validateNode() []error {
	var errs []error
	if c.TrustDomain == "" {
		errs = append(errs, missing("trust_domain",
			"set it in the file, with BUNDLEX_TRUST_DOMAIN or with --trust-domain"))
	} else {
		errs = append(errs, checkTrustDomainName("trust_domain", c.TrustDomain))
	}
	if c.NodeName == "" {
		errs = append(errs, missing("node_name", "set a name unique in the cluster"))
	}
	if c.DataDir == "" {
		errs = append(errs, missing("data_dir",
			"set a directory for the Raft log, snapshots and keys"))
	}
	errs = append(errs, oneOf("log_level", c.LogLevel, "debug", "info", "warn", "error"))
	errs = append(errs, oneOf("log_format", c.LogFormat, LogFormatText, LogFormatJSON))
	switch {
	case c.Admin.SocketPath == "" && c.DataDir != "":
		errs = append(errs, missing("admin.socket_path", "set a Unix socket path"))
	case len(c.Admin.SocketPath) > MaxSocketPathLength:
		errs = append(errs, invalid("admin.socket_path", c.Admin.SocketPath, fmt.Sprintf(
			"use a path of at most %d bytes, the Unix socket limit", MaxSocketPathLength)))
	}
	errs = append(errs, checkHostPort("health.address", c.Health.Address, true))
	return errs
}

func (c *Config) validateEndpoint() []error {
	e := c.BundleEndpoint
	errs := []error{checkHostPort("bundle_endpoint.address", e.Address, false)}
	if !strings.HasPrefix(e.Path, "/") || strings.ContainsAny(e.Path, "?#") {
		errs = append(errs, invalid("bundle_endpoint.path", e.Path,
			"use a URL path starting with /, without query or fragment"))
	}
	errs = append(errs, oneOf("bundle_endpoint.profile", e.Profile,
		ProfileHTTPSSPIFFE, ProfileHTTPSWeb))

	// SPIFFE Trust Domain and Bundle 4.1.2: spiffe_refresh_hint is a count of
	// seconds, so a fraction would be silently cut.
	if e.RefreshHint < time.Second || e.RefreshHint%time.Second != 0 {
		errs = append(errs, invalid("bundle_endpoint.refresh_hint", e.RefreshHint,
			"use whole seconds of at least 1s, such as 5m"))
	}
	errs = append(errs, c.validateEndpointTLS()...)
	if e.CertReloadInterval < time.Second {
		errs = append(errs, invalid("bundle_endpoint.cert_reload_interval", e.CertReloadInterval,
			"use a duration of at least 1s, such as 30s"))
	}

	// Without a trust domain, FillDerived cannot fill the ID, and the
	// trust_domain error already names the cause.
	if e.SPIFFEID == "" && c.TrustDomain == "" {
		return errs
	}
	id, err := checkSPIFFEID("bundle_endpoint.spiffe_id", e.SPIFFEID)
	if err != nil {
		return append(errs, err)
	}

	if td, tdErr := spiffeid.TrustDomainFromString(c.TrustDomain); tdErr == nil &&
		id.TrustDomain() != td {
		errs = append(errs, invalid("bundle_endpoint.spiffe_id", e.SPIFFEID, fmt.Sprintf(
			"use an ID in the local trust domain, such as spiffe://%s/bundlex", td.Name())))
	}
	return errs
}

func (c *Config) validateEndpointTLS() []error {
	e := c.BundleEndpoint
	var errs []error
	if e.Profile == ProfileHTTPSWeb {
		errs = append(errs,
			requireFor("bundle_endpoint.cert_file", e.CertFile, "bundle_endpoint.profile", e.Profile),
			requireFor("bundle_endpoint.key_file", e.KeyFile, "bundle_endpoint.profile", e.Profile))
	} else if e.Profile == ProfileHTTPSSPIFFE {
		errs = append(errs,
			onlyWith("bundle_endpoint.cert_file", e.CertFile, "bundle_endpoint.profile", ProfileHTTPSWeb),
			onlyWith("bundle_endpoint.key_file", e.KeyFile, "bundle_endpoint.profile", ProfileHTTPSWeb))
	}
	return errs
}

func (c *Config) validateRaft() []error {
	r := c.Raft
	var errs []error
	if r.SnapshotRetain < 1 {
		errs = append(errs, invalid("raft.snapshot_retain", r.SnapshotRetain,
			"use at least 1"))
	}
	if r.SnapshotThreshold < 1 {
		errs = append(errs, invalid("raft.snapshot_threshold", r.SnapshotThreshold,
			"use at least 1"))
	}
	errs = append(errs, positive("raft.apply_timeout", r.ApplyTimeout, "10s"))
	return errs
}

// checkTrustDomainName accepts a bare trust domain name. go-spiffe's parser also
// accepts a whole SPIFFE ID, which is not a name, and no length limit.
func checkTrustDomainName(key, name string) error {
	td, err := spiffeid.TrustDomainFromString(name)
	switch {
	case err != nil:
		return invalidWrap(key, name, err, "use a name such as example.org")
	case td.Name() != name:
		return invalid(key, name, fmt.Sprintf(
			"use the bare name %s, not a SPIFFE ID", td.Name()))
	case len(name) > MaxTrustDomainLength:
		// SPIFFE-ID 2.3: a trust domain name has at most 255 bytes.
		return invalid(key, name, fmt.Sprintf(
			"use a name of at most %d bytes", MaxTrustDomainLength))
	}
	return nil
}

// checkSPIFFEID parses a SPIFFE ID and applies the SPIFFE-ID 2.3 length limit.
func checkSPIFFEID(key, id string) (spiffeid.ID, error) {
	if id == "" {
		return spiffeid.ID{}, missing(key, "set a SPIFFE ID such as spiffe://example.org/bundlex")
	}
	parsed, err := spiffeid.FromString(id)
	if err != nil {
		return spiffeid.ID{}, invalidWrap(key, id, err,
			"use a SPIFFE ID such as spiffe://example.org/bundlex")
	}
	if len(id) > MaxSPIFFEIDLength {
		return spiffeid.ID{}, invalid(key, id, fmt.Sprintf(
			"use an ID of at most %d bytes", MaxSPIFFEIDLength))
	}
	if len(parsed.TrustDomain().Name()) > MaxTrustDomainLength {
		return spiffeid.ID{}, invalid(key, id, fmt.Sprintf(
			"use a trust domain name of at most %d bytes", MaxTrustDomainLength))
	}
	return parsed, nil
}

// checkHostPort accepts host:port with a port from 0 to 65535. The host may be
// empty, which means every interface.
func checkHostPort(key, address string, allowEmpty bool) error {
	if address == "" {
		if allowEmpty {
			return nil
		}
		return missing(key, "set host:port, such as 127.0.0.1:8443")
	}
	_, port, err := net.SplitHostPort(address)
	if err == nil {
		_, err = strconv.ParseUint(port, 10, 16)
	}
	if err != nil {
		return invalid(key, address, "use host:port, such as 127.0.0.1:8443")
	}
	return nil
}

func isUnspecifiedHost(address string) bool {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return host == "" || (ip != nil && ip.IsUnspecified())
}

func oneOf(key, value string, accepted ...string) error {
	for _, a := range accepted {
		if value == a {
			return nil
		}
	}
	return invalid(key, value, "use "+orList(accepted))
}

// orList joins values as "a, b or c".
func orList(values []string) string {
	if len(values) == 1 {
		return values[0]
	}
	return strings.Join(values[:len(values)-1], ", ") + " or " + values[len(values)-1]
}

func positive(key string, d time.Duration, example string) error {
	if d <= 0 {
		return invalid(key, d, "use a positive duration, such as "+example)
	}
	return nil
}

// requireFor reports an empty key that another key's value needs.
func requireFor(key, value, otherKey, otherValue string) error {
	if value != "" {
		return nil
	}
	return missing(key, fmt.Sprintf("required when %s is %s", otherKey, otherValue))
}

// onlyWith reports a key that would be ignored because another key does not
// have the value that uses it.
func onlyWith(key, value, otherKey, otherValue string) error {
	if value == "" {
		return nil
	}
	return invalid(key, value, fmt.Sprintf(
		"only used when %s is %s; remove it or change %s", otherKey, otherValue, otherKey))
}

func invalidWrap(key string, value any, err error, hint string) error {
	return fmt.Errorf("config: %s: invalid value %s: %w; %s",
		key, formatKeyValue(key, value), err, hint)
}
