// Package admin is the node's administration API: HTTP and JSON under /v1/ on a
// Unix socket that only the node's user can open, plus the client the CLI uses.
//
// Routes:
//
//	GET    /v1/status                          node and Raft status
//	GET    /v1/bundle                          the local trust domain's bundle
//	GET    /v1/bundles                         every federated bundle
//	GET    /v1/bundles/{td}                    one federated bundle
//	PUT    /v1/bundles/{td}                    operator override (SetBundleRequest)
//	DELETE /v1/bundles/{td}                    delete a federated bundle
//	GET    /v1/relationships                   every relationship with its status
//	POST   /v1/relationships                   create (RelationshipRequest)
//	GET    /v1/relationships/{td}              one relationship with its status
//	PUT    /v1/relationships/{td}              update (RelationshipRequest)
//	DELETE /v1/relationships/{td}              delete, with its bundle
//	POST   /v1/relationships/{td}/refresh      fetch now
//	POST   /v1/authority/rotate                prepare new signing keys now
//	POST   /v1/svid/x509                       mint an X509-SVID (MintX509SVIDRequest)
//	POST   /v1/svid/jwt                        mint a JWT-SVID (MintJWTSVIDRequest)
//	GET    /v1/cluster/members                 gossip members with their Raft suffrage
//	GET    /v1/cluster/raft                    this node's view of the Raft cluster
//	POST   /v1/cluster/leave                   this node leaves the cluster gracefully
//	POST   /v1/cluster/remove                  remove a server (RemoveServerRequest)
//	GET    /v1/snapshot                        a snapshot file (SnapshotMeta line + data)
//	PUT    /v1/snapshot                        restore a snapshot file on the cluster
//
// Errors are ErrorResponse bodies with a stable code and a sentence.
package admin

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// Times in these types are RFC 3339. A time that has not happened, such as the
// last success of a peer that was never fetched, is left out of the JSON
// (omitzero) rather than sent as 0001-01-01T00:00:00Z, and decodes as the zero
// time.

// Bundle is a stored bundle as the API returns it.
type Bundle struct {
	TrustDomain string `json:"trust_domain"`
	Sequence    uint64 `json:"sequence"`
	HasSequence bool   `json:"has_sequence"`
	// RefreshHintSeconds is the published spiffe_refresh_hint, 0 when absent.
	RefreshHintSeconds int64     `json:"refresh_hint_seconds"`
	X509Keys           int       `json:"x509_keys"`
	JWTKeys            int       `json:"jwt_keys"`
	Source             string    `json:"source"`
	UpdatedAt          time.Time `json:"updated_at,omitzero"`
	// Document is the SPIFFE bundle (JWK Set) as stored.
	Document json.RawMessage `json:"document"`
	// PEM holds the X.509 authorities as PEM certificates.
	PEM string `json:"pem"`
}

// SetBundleRequest overrides a federated bundle (SPIFFE Federation 4.2: the
// override is kept until the next refresh).
type SetBundleRequest struct {
	Format string `json:"format"` // spiffe or pem
	Data   string `json:"data"`
}

// RelationshipRequest creates or updates a federation relationship. On update,
// empty fields keep their stored values.
type RelationshipRequest struct {
	TrustDomain       string   `json:"trust_domain"`
	BundleEndpointURL string   `json:"bundle_endpoint_url"`
	Profile           string   `json:"profile"`
	EndpointSPIFFEID  string   `json:"endpoint_spiffe_id,omitempty"`
	CAPEM             string   `json:"ca_pem,omitempty"`
	AllowedIDPrefixes []string `json:"allowed_id_prefixes,omitempty"`
	// ClearAllowedIDPrefixes removes every allowed ID prefix on update, so that
	// the whole trust domain is allowed again.
	ClearAllowedIDPrefixes bool `json:"clear_allowed_id_prefixes,omitempty"`
	// Bootstrap is the peer's bundle to start from, in BootstrapFormat.
	Bootstrap       string `json:"bootstrap,omitempty"`
	BootstrapFormat string `json:"bootstrap_format,omitempty"`
}

// Relationship is a stored relationship with its fetch status.
type Relationship struct {
	TrustDomain       string     `json:"trust_domain"`
	BundleEndpointURL string     `json:"bundle_endpoint_url"`
	Profile           string     `json:"profile"`
	EndpointSPIFFEID  string     `json:"endpoint_spiffe_id,omitempty"`
	HasCA             bool       `json:"has_ca"`
	AllowedIDPrefixes []string   `json:"allowed_id_prefixes,omitempty"`
	Static            bool       `json:"static"`
	CreatedAt         time.Time  `json:"created_at,omitzero"`
	UpdatedAt         time.Time  `json:"updated_at,omitzero"`
	Status            PeerStatus `json:"status"`
}

// PeerStatus is the fetch history of one relationship.
type PeerStatus struct {
	HasBundle           bool      `json:"has_bundle"`
	StoredSequence      uint64    `json:"stored_sequence"`
	BundleSource        string    `json:"bundle_source,omitempty"`
	LastAttempt         time.Time `json:"last_attempt,omitzero"`
	LastSuccess         time.Time `json:"last_success,omitzero"`
	LastChange          time.Time `json:"last_change,omitzero"`
	NextRefresh         time.Time `json:"next_refresh,omitzero"`
	LastError           string    `json:"last_error,omitempty"`
	ConsecutiveFailures int       `json:"consecutive_failures"`
	X509Keys            int       `json:"x509_keys"`
	JWTKeys             int       `json:"jwt_keys"`
	SkippedKeys         int       `json:"skipped_keys"`
}

// Status describes the node.
type Status struct {
	NodeName     string    `json:"node_name"`
	TrustDomain  string    `json:"trust_domain"`
	Version      string    `json:"version"`
	RaftState    string    `json:"raft_state"`
	Leader       string    `json:"leader"`
	AppliedIndex uint64    `json:"applied_index"`
	LastContact  time.Time `json:"last_contact,omitzero"`
	Ready        bool      `json:"ready"`
	ReadyError   string    `json:"ready_error,omitempty"`
	EndpointURL  string    `json:"endpoint_url"`
}

// Error codes of ErrorResponse.
const (
	CodeInvalidArgument = "invalid_argument"
	CodeNotFound        = "not_found"
	CodeAlreadyExists   = "already_exists"
	CodeConflict        = "conflict"
	CodeNotLeader       = "not_leader"
	CodeUnavailable     = "unavailable"
	CodeInternal        = "internal"
)

// ErrorResponse is the body of every failed request.
type ErrorResponse struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// APIError is an ErrorResponse as a Go error, on both sides of the socket. The
// server sends Code and Message with the HTTP status of the code; the client
// returns it for every non-2xx response.
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string { return e.Message }

// Errorf returns an APIError with the HTTP status that belongs to code.
func Errorf(code, format string, args ...any) *APIError {
	return &APIError{Status: StatusForCode(code), Code: code, Message: fmt.Sprintf(format, args...)}
}

// StatusForCode maps an error code to its HTTP status.
func StatusForCode(code string) int {
	switch code {
	case CodeInvalidArgument:
		return http.StatusBadRequest
	case CodeNotFound:
		return http.StatusNotFound
	case CodeAlreadyExists, CodeConflict:
		return http.StatusConflict
	case CodeNotLeader, CodeUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// MintX509SVIDRequest is a request to the built-in authority for an X509-SVID.
type MintX509SVIDRequest struct {
	SPIFFEID   string `json:"spiffe_id"`
	TTLSeconds int64  `json:"ttl_seconds,omitempty"`
}

// X509SVID is a minted X509-SVID with its private key, all PEM.
type X509SVID struct {
	SPIFFEID  string    `json:"spiffe_id"`
	CertsPEM  string    `json:"certs_pem"`
	KeyPEM    string    `json:"key_pem"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// MintJWTSVIDRequest is a request to the built-in authority for a JWT-SVID.
type MintJWTSVIDRequest struct {
	SPIFFEID   string   `json:"spiffe_id"`
	Audience   []string `json:"audience"`
	TTLSeconds int64    `json:"ttl_seconds,omitempty"`
}

// JWTSVID is a minted JWT-SVID.
type JWTSVID struct {
	SPIFFEID  string    `json:"spiffe_id"`
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// ClusterMember is one server as gossip and the Raft configuration describe it.
type ClusterMember struct {
	Name       string `json:"name"`
	GossipAddr string `json:"gossip_addr"`
	// Status is the gossip status: alive, leaving, left, dead or unknown.
	Status   string `json:"status"`
	RaftAddr string `json:"raft_addr"`
	// Suffrage is voter, nonvoter or staging in the Raft configuration, empty
	// when the member is not in it.
	Suffrage  string `json:"suffrage"`
	LastIndex uint64 `json:"last_index"`
	// RaftProbeError is set on the leader for a member that it does not add to
	// the Raft configuration, because its Raft address failed the connection
	// check (mutual TLS with the cluster TLS files). Other nodes leave it empty.
	RaftProbeError string `json:"raft_probe_error,omitempty"`
	// RaftProbeFailingSince is when the member began to fail the check.
	RaftProbeFailingSince *time.Time `json:"raft_probe_failing_since,omitempty"`
}

// RaftServer is one server of the Raft configuration.
type RaftServer struct {
	ID       string `json:"id"`
	Address  string `json:"address"`
	Suffrage string `json:"suffrage"`
	Leader   bool   `json:"leader"`
}

// RaftStatus is this node's view of the Raft cluster.
type RaftStatus struct {
	Node         string       `json:"node"`
	State        string       `json:"state"`
	LeaderID     string       `json:"leader_id"`
	LeaderAddr   string       `json:"leader_addr"`
	Term         uint64       `json:"term"`
	LastIndex    uint64       `json:"last_index"`
	CommitIndex  uint64       `json:"commit_index"`
	AppliedIndex uint64       `json:"applied_index"`
	LastContact  time.Time    `json:"last_contact,omitzero"`
	Servers      []RaftServer `json:"servers"`
}

// RemoveServerRequest removes a server from the Raft configuration.
type RemoveServerRequest struct {
	Node string `json:"node"`
}

// SnapshotMeta describes a snapshot file: the first line of the file, followed
// by Size bytes of snapshot data whose SHA-256 is SHA256 (hex).
type SnapshotMeta struct {
	Version int `json:"version"`
	// TrustDomain is the local trust domain of the cluster the snapshot was
	// taken on. A snapshot is only restored on a cluster of the same one.
	TrustDomain string `json:"trust_domain"`
	ID          string `json:"id"`
	Index       uint64 `json:"index"`
	Term        uint64 `json:"term"`
	Size        int64  `json:"size"`
	SHA256      string `json:"sha256"`
	// Configuration is the Raft configuration in the snapshot, JSON encoded by
	// hashicorp/raft.
	Configuration json.RawMessage `json:"configuration"`
	// ConfigurationIndex is the log index of Configuration.
	ConfigurationIndex uint64 `json:"configuration_index"`
}
