package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/bundlex/bundlex/federation"
)

// Spec returns the static relationship with trust domain name as the node
// checks and stores it, with the content of bundle_path and ca_file. The node
// reads the files again each time it applies the relationship.
func (r Relationship) Spec(name string) (federation.RelationshipSpec, error) {
	spec := federation.RelationshipSpec{
		TrustDomain:       name,
		BundleEndpointURL: r.BundleEndpointURL,
		Profile:           r.Profile,
		EndpointSPIFFEID:  r.EndpointSPIFFEID,
		AllowedIDPrefixes: r.AllowedIDPrefixes,
		BootstrapFormat:   r.BundleFormat,
	}
	var err error
	if spec.Bootstrap, err = readRelationshipFile(relationshipKey(name, "bundle_path"),
		r.BundlePath); err != nil {
		return federation.RelationshipSpec{}, err
	}
	if spec.CAPEM, err = readRelationshipFile(relationshipKey(name, "ca_file"),
		r.CAFile); err != nil {
		return federation.RelationshipSpec{}, err
	}
	return spec, nil
}

func readRelationshipFile(key, path string) (string, error) {
	if path == "" {
		return "", nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		// The path is already in the message, so keep only the reason.
		var pathErr *fs.PathError
		if errors.As(err, &pathErr) {
			err = pathErr.Err
		}
		return "", invalidWrap(key, path, err,
			"check the path and that the node's user may read the file")
	}
	return string(data), nil
}

// checkRelationshipAsNode runs the node's own check of a static relationship,
// federation.CheckRelationship, on the relationship and the content of its
// files. Without it, a relationship that passed the checks of this package but
// failed the node's would make the leader retry it at every start.
func (c *Config) checkRelationshipAsNode(name string, rel Relationship) error {
	local, err := spiffeid.TrustDomainFromString(c.TrustDomain)
	if err != nil {
		// The trust_domain error already names the cause.
		return nil
	}
	spec, err := rel.Spec(name)
	if err != nil {
		return err
	}
	_, err = federation.CheckRelationship(local, spec)
	var fieldErr *federation.FieldError
	if err == nil || !errors.As(err, &fieldErr) {
		return err
	}
	key := func(field string) string { return relationshipKey(name, field) }
	var prefixErr *federation.IDPrefixError
	switch fieldErr.Field {
	case federation.FieldAllowedIDPrefixes:
		if errors.As(err, &prefixErr) {
			return invalid(key("allowed_id_prefixes"), prefixErr.Prefix, prefixErr.Reason)
		}
	case federation.FieldTrustDomain:
		return invalidWrap(key(""), name, fieldErr.Err, "use another trust domain name")
	case federation.FieldBootstrap:
		return invalidWrap(key("bundle_path"), rel.BundlePath, fieldErr.Err,
			"use a bundle of "+name+" in bundle_format "+rel.BundleFormat)
	case federation.FieldCA:
		return invalidWrap(key("ca_file"), rel.CAFile, fieldErr.Err,
			"use a PEM file of CA certificates")
	}
	values := map[string]string{
		federation.FieldEndpointURL: rel.BundleEndpointURL,
		federation.FieldProfile:     rel.Profile,
		federation.FieldEndpointID:  rel.EndpointSPIFFEID,
	}
	return fmt.Errorf("config: %s: invalid value %s: %w", key(fieldErr.Field),
		formatValue(values[fieldErr.Field]), fieldErr.Err)
}

// checkIDPrefixes checks each prefix of key on its own, so that every invalid
// one is reported, with the function the node and the Raft commands use.
func checkIDPrefixes(key string, td spiffeid.TrustDomain, prefixes []string) []error {
	var errs []error
	for _, prefix := range prefixes {
		_, err := federation.ParseIDPrefixes(td, []string{prefix})
		var prefixErr *federation.IDPrefixError
		if errors.As(err, &prefixErr) {
			errs = append(errs, invalid(key, prefix, prefixErr.Reason))
		} else if err != nil {
			errs = append(errs, invalidWrap(key, prefix, err, "use a SPIFFE ID prefix"))
		}
	}
	return errs
}
