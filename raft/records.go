package raft

import (
	"encoding/json"
	"slices"
	"time"
)

// Source is the origin of a stored bundle.
type Source string

// Sources of a stored bundle.
const (
	// SourceLocal marks the bundle of this cluster's own trust domain.
	SourceLocal Source = "local"
	// SourceFetched marks a bundle fetched from a peer's bundle endpoint.
	SourceFetched Source = "fetched"
	// SourceBootstrap marks the bundle an operator supplied with a relationship,
	// used to authenticate the first https_spiffe fetch (SPIFFE Federation 5.2.2.2).
	SourceBootstrap Source = "bootstrap"
	// SourceOperator marks a bundle an operator set by hand (SPIFFE Federation 4.2).
	SourceOperator Source = "operator"
)

// valid reports whether s is one of the defined sources.
func (s Source) valid() bool {
	switch s {
	case SourceLocal, SourceFetched, SourceBootstrap, SourceOperator:
		return true
	}
	return false
}

// BundleRecord is one trust domain's bundle as stored in the replicated state. The
// document is kept as received so that every node serves the same bytes.
type BundleRecord struct {
	TrustDomain string `json:"trust_domain"`
	// Document is the SPIFFE bundle, a JWK Set in JSON. It is embedded in log
	// entries and snapshots as JSON, not as base64, so that decoding an entry on
	// every node costs a copy instead of a base64 decode.
	Document json.RawMessage `json:"document"`
	// Sequence is the document's spiffe_sequence, valid only when HasSequence is
	// true because the member is optional (SPIFFE Trust Domain and Bundle 4.1.1).
	Sequence    uint64    `json:"sequence"`
	HasSequence bool      `json:"has_sequence"`
	Source      Source    `json:"source"`
	UpdatedAt   time.Time `json:"updated_at"`
}

func (r BundleRecord) clone() BundleRecord {
	r.Document = slices.Clone(r.Document)
	return r
}

// Relationship is a one-way federation relationship: this cluster fetches the bundle
// of TrustDomain from BundleEndpointURL (SPIFFE Federation 6).
type Relationship struct {
	TrustDomain       string `json:"trust_domain"`
	BundleEndpointURL string `json:"bundle_endpoint_url"`
	// Profile is "https_web" or "https_spiffe".
	Profile string `json:"profile"`
	// EndpointSPIFFEID is the SPIFFE ID the https_spiffe endpoint must present.
	EndpointSPIFFEID string `json:"endpoint_spiffe_id"`
	// CAPEM contains extra root certificates for https_web in PEM, stored as content
	// rather than a path so that every node has them.
	CAPEM []byte `json:"ca_pem"`
	// AllowedIDPrefixes limits the SPIFFE IDs trusted through this relationship.
	// Empty means the whole trust domain.
	AllowedIDPrefixes []string `json:"allowed_id_prefixes"`
	// Static marks a relationship that comes from the configuration file.
	Static    bool      `json:"static"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

func (r Relationship) clone() Relationship {
	r.CAPEM = slices.Clone(r.CAPEM)
	r.AllowedIDPrefixes = slices.Clone(r.AllowedIDPrefixes)
	return r
}

// PeerStatus is the fetch history of one relationship, replicated so that a new
// leader resumes the refresh schedule where the old one stopped.
type PeerStatus struct {
	TrustDomain string    `json:"trust_domain"`
	LastAttempt time.Time `json:"last_attempt"`
	LastSuccess time.Time `json:"last_success"`
	NextRefresh time.Time `json:"next_refresh"`
	// LastChange is when the fetched bundle content last changed.
	LastChange          time.Time `json:"last_change"`
	LastError           string    `json:"last_error"`
	ConsecutiveFailures int       `json:"consecutive_failures"`
	// LastFetchedSequence is the highest spiffe_sequence stored from a fetch, the
	// floor of the rollback protection. The state machine owns it and
	// HasFetchedSequence: values sent in a command are ignored, so no status write
	// can lower the floor.
	LastFetchedSequence uint64 `json:"last_fetched_sequence"`
	HasFetchedSequence  bool   `json:"has_fetched_sequence"`
	X509Keys            int    `json:"x509_keys"`
	JWTKeys             int    `json:"jwt_keys"`
	// SkippedKeys counts keys of the last fetched bundle that were ignored under
	// SPIFFE Trust Domain and Bundle 4.1.3.
	SkippedKeys int `json:"skipped_keys"`
}
