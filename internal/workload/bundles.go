package workload

import (
	"bytes"
	"encoding/json"

	"github.com/bundlex/bundlex/bundle"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// errNoLocalBundle ends a bundle stream while the node has no local bundle, and
// while the source returns no snapshot because the node is still loading its
// replicated state after a start. SPIFFE Workload API 5.2.2 and 6.2.2: a
// response must contain at least the bundle of the server's own trust domain.
// SPIFFE Workload Endpoint 6: clients retry Unavailable with a backoff.
var errNoLocalBundle = status.Error(codes.Unavailable,
	"no local trust bundle yet: the node is still starting or loading its replicated "+
		"state; retry with a backoff")

// x509BundleMap returns the X.509 authorities of every trust domain keyed by the
// trust domain's SPIFFE ID, each as concatenated ASN.1 DER certificates (SPIFFE
// Workload API 5.1, X509BundlesResponse). Certificates are sorted so that equal
// content gives equal bytes. A trust domain without X.509 authorities gets an
// empty value, so the client trusts no X509-SVID of that trust domain.
func x509BundleMap(snapshot *Snapshot) (map[string][]byte, error) {
	if snapshot == nil || snapshot.Local == nil {
		return nil, errNoLocalBundle
	}
	out := make(map[string][]byte)
	for td, b := range snapshot.Bundles() {
		sorted := b.Clone()
		sorted.Normalize()
		der := []byte{}
		for _, cert := range sorted.X509Authorities {
			der = append(der, cert.Raw...)
		}
		out[td.IDString()] = der
	}
	return out, nil
}

// jwtBundleMap returns the jwt-svid keys of every trust domain keyed by the
// trust domain's SPIFFE ID, each as a JWK Set. SPIFFE Workload API 6.2.2: the
// server must not include keys with other uses, so X.509 and WIT keys are left
// out. bundle.Marshal is canonical, so equal keys give equal bytes.
func jwtBundleMap(snapshot *Snapshot) (map[string][]byte, error) {
	if snapshot == nil || snapshot.Local == nil {
		return nil, errNoLocalBundle
	}
	out := make(map[string][]byte)
	for td, b := range snapshot.Bundles() {
		doc, err := bundle.Marshal(&bundle.Bundle{TrustDomain: td, JWTAuthorities: b.JWTAuthorities})
		if err != nil {
			return nil, status.Errorf(codes.Internal, "encode JWT bundle of %s: %v", td, err)
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, doc); err != nil {
			return nil, status.Errorf(codes.Internal, "compact JWT bundle of %s: %v", td, err)
		}
		out[td.IDString()] = compact.Bytes()
	}
	return out, nil
}

// sameBundleMap reports whether two responses would carry the same bundles.
func sameBundleMap(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for id, value := range a {
		other, ok := b[id]
		if !ok || !bytes.Equal(value, other) {
			return false
		}
	}
	return true
}
