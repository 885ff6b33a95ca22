package main

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"github.com/bundlex/bundlex/bundle"
	"github.com/bundlex/bundlex/config"
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
	allowedPrefixes []string
}

// updateFlags are the flags that `federation update` can change.
var updateFlags = []string{"bundle-endpoint-url", "profile", "endpoint-spiffe-id",
	"bundle-path", "ca-file", "allowed-id-prefix", "clear-allowed-id-prefixes"}

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
	fs.StringSliceVar(&f.allowedPrefixes, "allowed-id-prefix", nil,
		"trust only SPIFFE IDs of the peer that start with this prefix; repeat for more")
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
	req := admin.RelationshipRequest{
		TrustDomain:       td,
		BundleEndpointURL: f.endpointURL,
		Profile:           f.profile,
		EndpointSPIFFEID:  f.endpointID,
		AllowedIDPrefixes: f.allowedPrefixes,
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
	} else if !anyChanged(cmd, updateFlags) {
		return usageErrorf("nothing to update for %s: pass at least one of --%s", td,
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
	if err := f.checkFileFlags(cmd); err != nil {
		return err
	}
	for _, prefix := range f.allowedPrefixes {
		if err := checkIDPrefix(td, prefix); err != nil {
			return err
		}
	}
	return nil
}

func (f *relationshipFlags) checkCreateFlags() error {
	if f.endpointURL == "" {
		return usageErrorf("missing --bundle-endpoint-url: pass the HTTPS URL of the " +
			"peer's bundle endpoint, such as https://org-b.test:8443/")
	}
	if f.profile == "" {
		return usageErrorf("missing --profile: pass %s or %s, the profile the peer's "+
			"endpoint serves", config.ProfileHTTPSSPIFFE, config.ProfileHTTPSWeb)
	}
	if f.profile == config.ProfileHTTPSSPIFFE && f.endpointID == "" {
		return usageErrorf("missing --endpoint-spiffe-id: --profile %s needs the SPIFFE ID "+
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
		return usageErrorf("invalid --profile %q: use %s or %s", f.profile,
			config.ProfileHTTPSSPIFFE, config.ProfileHTTPSWeb)
	}
	if f.endpointID != "" {
		if _, err := bundle.ParseID(f.endpointID); err != nil {
			return &usageError{err: fmt.Errorf("invalid --endpoint-spiffe-id: %w", err)}
		}
	}
	// SPIFFE Federation 5.2.1.2: https_web takes no endpoint SPIFFE ID.
	if f.profile == config.ProfileHTTPSWeb && f.endpointID != "" {
		return usageErrorf("--endpoint-spiffe-id applies only to --profile %s; remove it "+
			"for %s", config.ProfileHTTPSSPIFFE, config.ProfileHTTPSWeb)
	}
	// Under https_spiffe the endpoint is verified with the peer's bundle, never
	// with Web PKI roots (SPIFFE Federation 5.2.2.4).
	if f.profile == config.ProfileHTTPSSPIFFE && f.caFile != "" {
		return usageErrorf("--ca-file applies only to --profile %s; remove it for %s",
			config.ProfileHTTPSWeb, config.ProfileHTTPSSPIFFE)
	}
	return nil
}

func (f *relationshipFlags) checkFileFlags(cmd *cobra.Command) error {
	if err := checkFormatFlag("--bundle-format", f.bundleFormat); err != nil {
		return err
	}
	if cmd.Flags().Changed("bundle-format") && f.bundlePath == "" {
		return usageErrorf("--bundle-format describes --bundle-path; pass --bundle-path too")
	}
	if f.bundlePath == stdinPath && f.caFile == stdinPath {
		return usageErrorf("--bundle-path and --ca-file cannot both read standard input; " +
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
		return usageErrorf("invalid --bundle-endpoint-url %q: %v", value, err)
	}
	if u.Scheme != "https" {
		return usageErrorf("invalid --bundle-endpoint-url %q: the scheme must be https, "+
			"such as https://org-b.test:8443/", value)
	}
	if u.Host == "" {
		return usageErrorf("invalid --bundle-endpoint-url %q: the host is missing, "+
			"such as https://org-b.test:8443/", value)
	}
	if u.User != nil {
		return usageErrorf("invalid --bundle-endpoint-url %q: a bundle endpoint URL "+
			"carries no user information; remove the part before '@'", value)
	}
	return nil
}

// checkIDPrefix requires a prefix inside td, because td's bundle only verifies
// SVIDs whose SPIFFE ID is in td (SPIFFE Federation 4.2).
func checkIDPrefix(td, prefix string) error {
	base := "spiffe://" + td
	if prefix == base || strings.HasPrefix(prefix, base+"/") {
		return nil
	}
	return usageErrorf("invalid --allowed-id-prefix %q: it must start with %s/, because "+
		"the relationship only covers IDs of %s", prefix, base, td)
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
