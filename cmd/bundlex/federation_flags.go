package main

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/bundlex/bundlex/bundle"
	"github.com/bundlex/bundlex/config"
	"github.com/bundlex/bundlex/federation"
	"github.com/bundlex/bundlex/internal/admin"
)

// relationshipFlags are the flags of `federation create` and `federation update`.
type relationshipFlags struct {
	trustDomain     string
	endpointURL     string
	profile         string
	endpointID      string
	bundlePath      string
	bundleFormat    string
	caFile          string
	allowedPrefixes prefixList
}

// Names of the allowed ID prefix flags. The singular one is repeated, as SPIRE
// Server's CLI repeats -dns and -selector. The plural one, spelled like the
// configuration key allowed_id_prefixes, is a hidden alias. Both take
// comma-separated values too.
const (
	flagAllowedIDPrefix   = "allowed-id-prefix"
	flagAllowedIDPrefixes = "allowed-id-prefixes"
)

// updateFlags are the flags that `federation update` can change.
var updateFlags = []string{"bundle-endpoint-url", "profile", "endpoint-spiffe-id",
	"bundle-path", "ca-file", flagAllowedIDPrefix, "clear-allowed-id-prefixes"}

// prefixList collects the values of both allowed ID prefix flags in the order
// given. Each value is split at commas and every entry is kept, empty ones
// too, so that validate can reject them.
type prefixList []string

func (p *prefixList) Set(value string) error {
	for entry := range strings.SplitSeq(value, ",") {
		*p = append(*p, strings.TrimSpace(entry))
	}
	return nil
}

func (p *prefixList) String() string { return strings.Join(*p, ",") }
func (p *prefixList) Type() string   { return "strings" }

func (f *relationshipFlags) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&f.trustDomain, "trust-domain", "",
		"peer trust domain, given as org-b.test or spiffe://org-b.test")
	fs.StringVar(&f.endpointURL, "bundle-endpoint-url", "",
		"HTTPS URL of the peer's bundle endpoint")
	fs.StringVar(&f.profile, "profile", "",
		"bundle endpoint profile: "+config.ProfileHTTPSSPIFFE+" or "+config.ProfileHTTPSWeb)
	fs.StringVar(&f.endpointID, "endpoint-spiffe-id", "",
		"SPIFFE ID that the endpoint's X509-SVID must carry ("+config.ProfileHTTPSSPIFFE+
			" only)")
	fs.StringVar(&f.bundlePath, "bundle-path", "",
		"file with the peer's current bundle to start from, or - for standard input")
	fs.StringVar(&f.bundleFormat, "bundle-format", formatSPIFFE,
		"encoding of --bundle-path: "+formatSPIFFE+" or "+formatPEM)
	fs.StringVar(&f.caFile, "ca-file", "", "PEM file of CA certificates trusted in "+
		"addition to the system roots for the endpoint ("+config.ProfileHTTPSWeb+" only)")
	fs.Var(&f.allowedPrefixes, flagAllowedIDPrefix, "trust only SPIFFE IDs of the peer "+
		"under this prefix, such as spiffe://org-b.test/agents/; repeat it or separate "+
		"prefixes with commas")
	fs.Var(&f.allowedPrefixes, flagAllowedIDPrefixes, "the same as --"+flagAllowedIDPrefix)
	_ = fs.MarkHidden(flagAllowedIDPrefixes)
}

// request checks the flags and builds the request with the content of
// --bundle-path and --ca-file, because the node may run on another host. For an
// update (create false) only the flags given are checked and sent.
func (f *relationshipFlags) request(cmd *cobra.Command,
	create bool) (string, admin.RelationshipRequest, error) {
	td, err := parseTrustDomainFlag("--trust-domain", f.trustDomain)
	if err != nil {
		return "", admin.RelationshipRequest{}, err
	}
	if err := f.validate(cmd, td, create); err != nil {
		return "", admin.RelationshipRequest{}, err
	}
	prefixes, err := f.checkPrefixes(td)
	if err != nil {
		return "", admin.RelationshipRequest{}, err
	}
	req := admin.RelationshipRequest{
		TrustDomain:       td,
		BundleEndpointURL: f.endpointURL,
		Profile:           f.profile,
		EndpointSPIFFEID:  f.endpointID,
		AllowedIDPrefixes: prefixes,
	}
	if f.bundlePath != "" {
		if req.Bootstrap, err = readInput(cmd, "--bundle-path", f.bundlePath); err != nil {
			return "", admin.RelationshipRequest{}, err
		}
		req.BootstrapFormat = f.bundleFormat
	}
	if f.caFile != "" {
		if req.CAPEM, err = readInput(cmd, "--ca-file", f.caFile); err != nil {
			return "", admin.RelationshipRequest{}, err
		}
		if err := checkCAPEM(f.caFile, req.CAPEM); err != nil {
			return "", admin.RelationshipRequest{}, err
		}
	}
	return td, req, nil
}

// validate checks the flags before any request. Create requires trust domain,
// URL and profile, because SPIFFE Federation 5.1 has the operator configure all
// three explicitly.
func (f *relationshipFlags) validate(cmd *cobra.Command, td string, create bool) error {
	if create {
		if err := f.checkCreateFlags(); err != nil {
			return err
		}
	} else if !anyChanged(cmd, append(updateFlags, flagAllowedIDPrefixes)) {
		return flagErrorf("nothing to update for %s: pass at least one of --%s", td,
			strings.Join(updateFlags, ", --"))
	}
	if f.endpointURL != "" {
		if err := checkEndpointURL(f.endpointURL); err != nil {
			return err
		}
	}
	if err := f.checkProfileFlags(); err != nil {
		return err
	}
	return f.checkFileFlags(cmd)
}

func (f *relationshipFlags) checkCreateFlags() error {
	if f.endpointURL == "" {
		return flagErrorf("missing --bundle-endpoint-url: pass the HTTPS URL of the " +
			"peer's bundle endpoint, such as https://org-b.test:8443/")
	}
	if f.profile == "" {
		return flagErrorf("missing --profile: pass %s or %s, the profile the peer's "+
			"endpoint serves", config.ProfileHTTPSSPIFFE, config.ProfileHTTPSWeb)
	}
	if f.profile == config.ProfileHTTPSSPIFFE && f.endpointID == "" {
		return flagErrorf("missing --endpoint-spiffe-id: --profile %s needs the SPIFFE ID "+
			"of the endpoint's X509-SVID, such as spiffe://org-b.test/bundlex",
			config.ProfileHTTPSSPIFFE)
	}
	return nil
}

// checkProfileFlags checks --profile and the flags that belong to one profile.
// On update without --profile the node checks them against the stored profile.
func (f *relationshipFlags) checkProfileFlags() error {
	switch f.profile {
	case "", config.ProfileHTTPSSPIFFE, config.ProfileHTTPSWeb:
	default:
		return flagErrorf("invalid --profile %q: use %s or %s", f.profile,
			config.ProfileHTTPSSPIFFE, config.ProfileHTTPSWeb)
	}
	if f.endpointID != "" {
		if _, err := bundle.ParseID(f.endpointID); err != nil {
			return &flagError{err: fmt.Errorf("invalid --endpoint-spiffe-id: %w", err)}
		}
	}
	// SPIFFE Federation 5.2.1.2: https_web takes no endpoint SPIFFE ID.
	if f.profile == config.ProfileHTTPSWeb && f.endpointID != "" {
		return flagErrorf("--endpoint-spiffe-id applies only to --profile %s; remove it "+
			"for %s", config.ProfileHTTPSSPIFFE, config.ProfileHTTPSWeb)
	}
	// Under https_spiffe the endpoint is verified with the peer's bundle, never
	// with Web PKI roots (SPIFFE Federation 5.2.2.4).
	if f.profile == config.ProfileHTTPSSPIFFE && f.caFile != "" {
		return flagErrorf("--ca-file applies only to --profile %s; remove it for %s",
			config.ProfileHTTPSWeb, config.ProfileHTTPSSPIFFE)
	}
	return nil
}

func (f *relationshipFlags) checkFileFlags(cmd *cobra.Command) error {
	if err := checkFormatFlag("--bundle-format", f.bundleFormat); err != nil {
		return err
	}
	if cmd.Flags().Changed("bundle-format") && f.bundlePath == "" {
		return flagErrorf("--bundle-format describes --bundle-path; pass --bundle-path too")
	}
	if f.bundlePath == stdinPath && f.caFile == stdinPath {
		return flagErrorf("--bundle-path and --ca-file cannot both read standard input; " +
			"pass a file for one of them")
	}
	return nil
}

func anyChanged(cmd *cobra.Command, names []string) bool {
	for _, name := range names {
		if cmd.Flags().Changed(name) {
			return true
		}
	}
	return false
}

// checkEndpointURL applies SPIFFE Federation 5.2.1.1 and 5.2.2.1: the bundle
// endpoint URL uses the https scheme and carries no user information.
func checkEndpointURL(value string) error {
	u, err := url.Parse(value)
	if err != nil {
		return flagErrorf("invalid --bundle-endpoint-url %q: %v", value, err)
	}
	if u.Scheme != "https" {
		return flagErrorf("invalid --bundle-endpoint-url %q: the scheme must be https, "+
			"such as https://org-b.test:8443/", value)
	}
	if u.Host == "" {
		return flagErrorf("invalid --bundle-endpoint-url %q: the host is missing, "+
			"such as https://org-b.test:8443/", value)
	}
	if u.User != nil {
		return flagErrorf("invalid --bundle-endpoint-url %q: a bundle endpoint URL "+
			"carries no user information; remove the part before '@'", value)
	}
	return nil
}

// checkPrefixes checks the allowed ID prefixes with the function the node uses
// and returns them without duplicates, nil when none were given. A prefix must
// be in td, because td's bundle only verifies SVIDs of td (SPIFFE Federation
// 4.2).
func (f *relationshipFlags) checkPrefixes(td string) ([]string, error) {
	prefixes, err := federation.ParseIDPrefixes(spiffeid.RequireTrustDomainFromString(td),
		f.allowedPrefixes)
	var prefixErr *federation.IDPrefixError
	if errors.As(err, &prefixErr) {
		return nil, flagErrorf("invalid --%s %q: %s", flagAllowedIDPrefix, prefixErr.Prefix,
			prefixErr.Reason)
	}
	return prefixes, err
}

// checkCAPEM requires at least one PEM certificate and nothing else, so that a
// private key passed by mistake never reaches the node's replicated state.
func checkCAPEM(path, data string) error {
	rest := []byte(data)
	count := 0
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return fmt.Errorf("--ca-file %s contains a %q PEM block; pass only CA "+
				"certificates", path, block.Type)
		}
		count++
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return fmt.Errorf("--ca-file %s: certificate %d is invalid: %w", path, count, err)
		}
	}
	if count == 0 {
		return fmt.Errorf("--ca-file %s contains no PEM certificate; pass CA certificates "+
			"that start with -----BEGIN CERTIFICATE-----", path)
	}
	return nil
}
