package config

import (
	"fmt"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/bundlex/bundlex/internal/authority"
)

// Keys of the Workload API's SVID issuance, named in errors.
const (
	keySVIDPathTemplate = "workload_api.svid_path_template"
	keySVIDTTL          = "workload_api.svid_ttl"
	keySVIDAllowedUIDs  = "workload_api.svid_allowed_uids"
)

// validateWorkloadSVIDs checks the settings that make the Workload API issue
// SVIDs to local callers. They take effect only with a template, a socket and
// the built-in authority, so a setting that would be ignored is an error.
func (c *Config) validateWorkloadSVIDs() []error {
	w := c.Consumers
	var errs []error
	if w.WorkloadSVIDTTL < MinWorkloadSVIDTTL {
		errs = append(errs, invalid(keySVIDTTL, w.WorkloadSVIDTTL, fmt.Sprintf(
			"use a duration of at least %s, because certificate times have whole seconds",
			MinWorkloadSVIDTTL)))
	}
	if w.WorkloadSVIDPathTemplate == "" {
		if len(w.WorkloadSVIDAllowedUIDs) > 0 {
			errs = append(errs, invalid(keySVIDAllowedUIDs, w.WorkloadSVIDAllowedUIDs,
				"only used when "+keySVIDPathTemplate+" is set; set the template or "+
					"remove the list"))
		}
		return errs
	}

	if w.WorkloadAPISocket == "" {
		errs = append(errs, invalid(keySVIDPathTemplate, w.WorkloadSVIDPathTemplate,
			"only used when workload_api.socket_path is set; set the socket path or "+
				"remove the template"))
	}
	if c.Authority.Type != AuthorityBuiltin {
		errs = append(errs, invalid(keySVIDPathTemplate, w.WorkloadSVIDPathTemplate,
			fmt.Sprintf("requires authority.type %s, but it is %q: only the built-in "+
				"authority holds signing keys; remove the template or use the built-in "+
				"authority", AuthorityBuiltin, c.Authority.Type)))
	} else if w.WorkloadSVIDTTL > c.Authority.X509SVIDMaxTTL {
		errs = append(errs, invalid(keySVIDTTL, w.WorkloadSVIDTTL, fmt.Sprintf(
			"use at most authority.x509_svid_max_ttl (%s), or raise that maximum",
			c.Authority.X509SVIDMaxTTL)))
	}

	template, err := ParseIDPathTemplate(w.WorkloadSVIDPathTemplate)
	if err != nil {
		return append(errs, invalidWrap(keySVIDPathTemplate, w.WorkloadSVIDPathTemplate, err,
			"use a path such as /workload/uid/{uid}, with the placeholders {uid} and {gid}"))
	}
	// With a single allowed user, a fixed ID names that user as {uid} would.
	if !template.HasPlaceholder() && len(w.WorkloadSVIDAllowedUIDs) != 1 {
		return append(errs, invalid(keySVIDPathTemplate, template.String(),
			"it has no placeholder, so every local caller would get the same SPIFFE ID and "+
				"could act as any other; add {uid} or {gid}, such as /workload/uid/{uid}, or "+
				"allow one user with "+keySVIDAllowedUIDs))
	}
	if c.TrustDomain == "" {
		// The trust_domain error already names the cause.
		return errs
	}
	errs = append(errs, c.checkTemplateReserved(template))
	return append(errs, c.checkTemplateAllowed(template)...)
}

// checkTemplateReserved rejects a template that can yield one of the node's own
// identities: an ID under the reserved path, or bundle_endpoint.spiffe_id.
// Peers accept this node's https_spiffe bundle endpoint by that ID alone, so a
// local caller with it could serve them any bundle. The admin API's mint
// rejects the same IDs with authority.CheckMintID.
func (c *Config) checkTemplateReserved(template IDPathTemplate) error {
	reserved := "/" + authority.ReservedPathSegment
	// A segment with a placeholder contains digits, so only a fixed first
	// segment can be the reserved one, and then every expansion has it.
	if authority.IsReservedPath(template.Expand(0, 0)) {
		return invalid(keySVIDPathTemplate, template.String(), fmt.Sprintf(
			"the IDs under spiffe://%s%s are reserved for bundlex's own identities, such as "+
				"the bundle endpoint's SPIFFE ID; use a path outside %s, such as "+
				"/workload/uid/{uid}", c.TrustDomain, reserved, reserved))
	}
	endpointID, err := spiffeid.FromString(c.BundleEndpoint.SPIFFEID)
	if err != nil || endpointID.TrustDomain().Name() != c.TrustDomain {
		// The bundle_endpoint.spiffe_id error already names the cause.
		return nil
	}
	if template.CanExpandTo(endpointID.Path()) {
		return invalid(keySVIDPathTemplate, template.String(), fmt.Sprintf(
			"it can yield %s, the bundle_endpoint.spiffe_id that peers require from this "+
				"node's https_spiffe endpoint; use a path that cannot yield that ID", endpointID))
	}
	return nil
}

// checkTemplateAllowed checks that every ID the template yields fits the
// SPIFFE ID length limit and authority.mint_allowed_id_prefixes.
func (c *Config) checkTemplateAllowed(template IDPathTemplate) []error {
	var errs []error
	base := "spiffe://" + c.TrustDomain
	longest := base + template.Expand(maxUnixID, maxUnixID)
	if len(longest) > MaxSPIFFEIDLength {
		errs = append(errs, invalid(keySVIDPathTemplate, template.String(), fmt.Sprintf(
			"the longest ID it yields has %d bytes; use a shorter path, because a SPIFFE "+
				"ID has at most %d bytes", len(longest), MaxSPIFFEIDLength)))
	}
	prefixes := c.Authority.MintAllowedIDPrefixes
	if len(prefixes) == 0 {
		return errs
	}
	fixed := base + template.FixedPrefix()
	for _, prefix := range prefixes {
		if prefixCovers(prefix, fixed, template.HasPlaceholder()) {
			return errs
		}
	}
	return append(errs, invalid(keySVIDPathTemplate, template.String(), fmt.Sprintf(
		"the IDs it yields start with %s, which is outside authority.mint_allowed_id_prefixes "+
			"(%s); use a template whose part before the first placeholder falls under one "+
			"of them", fixed, strings.Join(prefixes, ", "))))
}

// maxUnixID is the largest user or group ID, 2^32-1.
const maxUnixID = 1<<32 - 1

// prefixCovers reports whether every ID that starts with fixed falls under the
// mint prefix, which matches whole path segments as the node's mint check
// does. A prefix with a trailing "/" matches any ID that starts with it, and
// one without matches itself and the IDs below it. Without a placeholder,
// fixed is the only ID.
func prefixCovers(prefix, fixed string, hasPlaceholder bool) bool {
	if strings.HasSuffix(prefix, "/") {
		return strings.HasPrefix(fixed, prefix)
	}
	if !hasPlaceholder && fixed == prefix {
		return true
	}
	return strings.HasPrefix(fixed, prefix+"/")
}
