package config

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

func (c *Config) validateAuthority() []error {
	a := c.Authority
	errs := []error{
		oneOf("authority.type", a.Type, AuthorityBuiltin, AuthorityFile),
		oneOf("authority.bundle_format", a.BundleFormat, BundleFormatSPIFFE, BundleFormatPEM),
	}
	if a.BundlePollInterval < 100*time.Millisecond {
		errs = append(errs, invalid("authority.bundle_poll_interval", a.BundlePollInterval,
			"use a duration of at least 100ms, such as 5s"))
	}
	switch a.Type {
	case AuthorityBuiltin:
		errs = append(errs, c.validateBuiltinAuthority()...)
		errs = append(errs,
			onlyWith("authority.bundle_path", a.BundlePath, "authority.type", AuthorityFile),
			onlyWith("authority.endpoint_cert_file", a.EndpointCertFile,
				"authority.type", AuthorityFile),
			onlyWith("authority.endpoint_key_file", a.EndpointKeyFile,
				"authority.type", AuthorityFile))
	case AuthorityFile:
		errs = append(errs, requireFor("authority.bundle_path", a.BundlePath,
			"authority.type", AuthorityFile))
		profile := c.BundleEndpoint.Profile
		if profile == ProfileHTTPSSPIFFE {
			// No built-in CA exists to sign the endpoint's X509-SVID.
			errs = append(errs,
				requireFor("authority.endpoint_cert_file", a.EndpointCertFile,
					"bundle_endpoint.profile", profile),
				requireFor("authority.endpoint_key_file", a.EndpointKeyFile,
					"bundle_endpoint.profile", profile))
		} else {
			errs = append(errs,
				onlyWith("authority.endpoint_cert_file", a.EndpointCertFile,
					"bundle_endpoint.profile", ProfileHTTPSSPIFFE),
				onlyWith("authority.endpoint_key_file", a.EndpointKeyFile,
					"bundle_endpoint.profile", ProfileHTTPSSPIFFE))
		}
	}
	return errs
}

func (c *Config) validateBuiltinAuthority() []error {
	a := c.Authority
	errs := []error{
		positive("authority.ca_ttl", a.CATTL, "168h"),
		positive("authority.jwt_key_ttl", a.JWTKeyTTL, "24h"),
		positive("authority.x509_svid_max_ttl", a.X509SVIDMaxTTL, "1h"),
		positive("authority.jwt_svid_max_ttl", a.JWTSVIDMaxTTL, "5m"),
	}
	// An SVID cannot outlive the key that signed it.
	if a.X509SVIDMaxTTL > 0 && a.X509SVIDMaxTTL >= a.CATTL {
		errs = append(errs, invalid("authority.x509_svid_max_ttl", a.X509SVIDMaxTTL,
			fmt.Sprintf("use less than authority.ca_ttl (%s)", a.CATTL)))
	}
	if a.JWTSVIDMaxTTL > 0 && a.JWTSVIDMaxTTL >= a.JWTKeyTTL {
		errs = append(errs, invalid("authority.jwt_svid_max_ttl", a.JWTSVIDMaxTTL,
			fmt.Sprintf("use less than authority.jwt_key_ttl (%s)", a.JWTKeyTTL)))
	}
	return append(errs, c.validatePublishLead())
}

// validatePublishLead applies SPIFFE Federation 4.1, which recommends publishing
// new keys 3 to 5 refresh hints before first use. The lead must also stay below each key
// lifetime, or a key would be published before its predecessor is in use.
func (c *Config) validatePublishLead() error {
	a := c.Authority
	hint := c.BundleEndpoint.RefreshHint
	if a.PublishLead < 0 {
		return invalid("authority.publish_lead", a.PublishLead,
			"use 0 for 4 refresh hints, or a positive duration")
	}
	if a.PublishLead > 0 && a.PublishLead < MinPublishLeadHints*hint {
		return invalid("authority.publish_lead", a.PublishLead, fmt.Sprintf(
			"use at least %d x bundle_endpoint.refresh_hint (%s), or 0 for %d refresh hints",
			MinPublishLeadHints, MinPublishLeadHints*hint, DefaultPublishLeadHints))
	}
	lead := c.EffectivePublishLead()
	shortest, shortestKey := a.CATTL, "authority.ca_ttl"
	if a.JWTKeyTTL < shortest {
		shortest, shortestKey = a.JWTKeyTTL, "authority.jwt_key_ttl"
	}
	if shortest <= 0 || lead < shortest {
		return nil
	}
	value := a.PublishLead.String()
	if a.PublishLead == 0 {
		value = fmt.Sprintf("0 (%d x bundle_endpoint.refresh_hint = %s)",
			DefaultPublishLeadHints, lead)
	}
	return fmt.Errorf("config: authority.publish_lead: invalid value %s: "+
		"use less than %s (%s), or raise %s", value, shortestKey, shortest, shortestKey)
}

func (c *Config) validateFederation() []error {
	f := c.Federation
	errs := []error{
		positive("federation.min_refresh", f.MinRefresh, "30s"),
		positive("federation.default_refresh", f.DefaultRefresh, "5m"),
		positive("federation.fetch_timeout", f.FetchTimeout, "10s"),
		positive("federation.retry_backoff_max", f.RetryBackoffMax, "5m"),
	}
	if f.MaxRefresh < f.MinRefresh {
		errs = append(errs, invalid("federation.max_refresh", f.MaxRefresh,
			fmt.Sprintf("use at least federation.min_refresh (%s)", f.MinRefresh)))
	}
	if f.DefaultRefresh > 0 && (f.DefaultRefresh < f.MinRefresh || f.DefaultRefresh > f.MaxRefresh) {
		errs = append(errs, invalid("federation.default_refresh", f.DefaultRefresh, fmt.Sprintf(
			"use a duration from federation.min_refresh (%s) to federation.max_refresh (%s)",
			f.MinRefresh, f.MaxRefresh)))
	}
	// SPIFFE Federation 6.2: after a failure, retry at the next interval rather
	// than aggressively, so the backoff may not cap below the shortest interval.
	if f.RetryBackoffMax > 0 && f.RetryBackoffMax < f.MinRefresh {
		errs = append(errs, invalid("federation.retry_backoff_max", f.RetryBackoffMax,
			fmt.Sprintf("use at least federation.min_refresh (%s)", f.MinRefresh)))
	}
	if f.MaxBundleSize <= 0 {
		errs = append(errs, invalid("federation.max_bundle_size", f.MaxBundleSize,
			"use a positive size, such as 1MiB"))
	}
	if f.MaxRedirects < 0 {
		errs = append(errs, invalid("federation.max_redirects", f.MaxRedirects,
			"use 0 to refuse redirects, or a positive count"))
	}
	return errs
}

// validateRelationships checks the static relationships in name order so that
// errors come out in a stable order.
func (c *Config) validateRelationships() []error {
	names := make([]string, 0, len(c.Federation.TrustDomains))
	for name := range c.Federation.TrustDomains {
		names = append(names, name)
	}
	slices.Sort(names)
	var errs []error
	for _, name := range names {
		errs = append(errs, c.validateRelationship(name, c.Federation.TrustDomains[name])...)
	}
	return errs
}

// validateRelationship checks one static relationship key by key. When those
// checks pass, it also runs the node's own check, so that a relationship the
// configuration accepts is never rejected when the leader applies it.
func (c *Config) validateRelationship(name string, rel Relationship) []error {
	errs := c.checkRelationshipKeys(name, rel)
	if errors.Join(errs...) != nil {
		return errs
	}
	return []error{c.checkRelationshipAsNode(name, rel)}
}

func (c *Config) checkRelationshipKeys(name string, rel Relationship) []error {
	key := func(field string) string { return relationshipKey(name, field) }
	var errs []error
	if err := checkTrustDomainName(key(""), name); err != nil {
		errs = append(errs, err)
	} else if name == c.TrustDomain {
		errs = append(errs, invalid(key(""), name,
			"use another trust domain; this is the local one, whose bundle the node publishes"))
	} else {
		td := spiffeid.RequireTrustDomainFromString(name)
		errs = append(errs, checkIDPrefixes(key("allowed_id_prefixes"), td,
			rel.AllowedIDPrefixes)...)
	}
	errs = append(errs, checkEndpointURL(key("bundle_endpoint_url"), rel.BundleEndpointURL))
	// SPIFFE Federation 5.1: the profile is configured explicitly, never guessed.
	if rel.Profile == "" {
		errs = append(errs, missing(key("profile"), "use https_spiffe or https_web"))
	} else {
		errs = append(errs, oneOf(key("profile"), rel.Profile, ProfileHTTPSSPIFFE, ProfileHTTPSWeb))
	}
	errs = append(errs, oneOf(key("bundle_format"), rel.BundleFormat,
		BundleFormatSPIFFE, BundleFormatPEM))
	switch rel.Profile {
	case ProfileHTTPSSPIFFE:
		errs = append(errs, onlyWith(key("ca_file"), rel.CAFile, key("profile"), ProfileHTTPSWeb))
		// SPIFFE Federation 5.2.2.2: the client is configured with the
		// endpoint's SPIFFE ID.
		id, err := checkSPIFFEID(key("endpoint_spiffe_id"), rel.EndpointSPIFFEID)
		errs = append(errs, err)
		// SPIFFE Federation 5.2.2.2: a self-serving endpoint needs a bootstrap
		// bundle, because no other source can verify its first SVID.
		if err == nil && id.TrustDomain().Name() == name && rel.BundlePath == "" {
			errs = append(errs, missing(key("bundle_path"), fmt.Sprintf(
				"endpoint_spiffe_id %s is in trust domain %s, so set a bootstrap bundle "+
					"of that trust domain", rel.EndpointSPIFFEID, name)))
		}
	case ProfileHTTPSWeb:
		// SPIFFE Federation 5.2.1.2: https_web takes no parameters beyond URL,
		// profile and name, so an endpoint ID here would be ignored.
		errs = append(errs, onlyWith(key("endpoint_spiffe_id"), rel.EndpointSPIFFEID,
			key("profile"), ProfileHTTPSSPIFFE))
	}
	return errs
}

// checkEndpointURL applies SPIFFE Federation 5.2.1.1 and 5.2.2.1: the scheme
// is https and the URL carries no userinfo. The path is free.
func checkEndpointURL(key, raw string) error {
	if raw == "" {
		return missing(key, "set the peer's bundle endpoint URL, such as https://example.org/")
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return invalidWrap(key, raw, err, "use a URL such as https://example.org/")
	case u.Scheme != "https":
		return invalid(key, raw, "use an https URL")
	case u.User != nil:
		return invalid(key, raw, "remove the user information; bundle endpoints take none")
	case u.Host == "" || u.Hostname() == "":
		return invalid(key, raw, "use a URL with a host, such as https://example.org/")
	case u.Fragment != "":
		return invalid(key, raw, "remove the fragment; it is never sent to the server")
	}
	return nil
}
