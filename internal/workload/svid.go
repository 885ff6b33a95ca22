package workload

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// errNoSVIDs and errNoJWTSVIDs are the statuses of the X.509 and JWT SVID RPCs
// while SVID issuance is off. The package documentation explains why the code is
// InvalidArgument and not PermissionDenied or Unimplemented.
var (
	errNoSVIDs = status.Error(codes.InvalidArgument,
		"bundlex distributes bundles only: this Workload API issues no SVIDs; set "+
			"workload_api.svid_path_template on the node to issue SVIDs to local callers, "+
			"which go-spiffe's X509Source and BundleSource need")
	errNoJWTSVIDs = status.Error(codes.InvalidArgument,
		"bundlex distributes bundles only: this Workload API issues no JWT-SVIDs; set "+
			"workload_api.svid_path_template on the node to issue JWT-SVIDs to local "+
			"callers. FetchJWTBundles and ValidateJWTSVID work without it")
)

// Values of the svidType argument of SVIDConfig.Issued.
const (
	SVIDTypeX509 = "x509"
	SVIDTypeJWT  = "jwt"
)

// Issuer signs SVIDs for IDs of the node's trust domain. The node's built-in
// authority implements it.
type Issuer interface {
	// MintX509SVID returns an X509-SVID with a new private key.
	MintX509SVID(id spiffeid.ID, ttl time.Duration) (*x509svid.SVID, error)
	// MintJWTSVID returns a signed JWT-SVID in JWS Compact Serialization.
	MintJWTSVID(id spiffeid.ID, audience []string, ttl time.Duration) (string, error)
}

// SVIDConfig makes the server issue an identity to each local caller, derived
// from the caller's Unix credentials.
type SVIDConfig struct {
	// Issuer signs the SVIDs. Required.
	Issuer Issuer
	// IDFor returns the SPIFFE ID of a caller. An error denies the caller any
	// SVID and is returned to it. Required.
	IDFor func(Caller) (spiffeid.ID, error)
	// TTL is the lifetime requested from the issuer for each SVID, which may
	// cap it. An X509-SVID is renewed at half of its lifetime. Required.
	TTL time.Duration
	// AllowedUIDs are the Unix user IDs that receive SVIDs. Empty allows every
	// caller that can open the socket.
	AllowedUIDs []uint32
	// Issued, if set, is called once for every SVID issued, with SVIDTypeX509
	// or SVIDTypeJWT.
	Issued func(svidType string)
}

func (c *SVIDConfig) check() error {
	switch {
	case c.Issuer == nil:
		return errors.New("workload: SVIDConfig.Issuer is nil; pass the node's authority")
	case c.IDFor == nil:
		return errors.New("workload: SVIDConfig.IDFor is nil; pass a function that maps " +
			"a caller to its SPIFFE ID")
	case c.TTL <= 0:
		return fmt.Errorf("workload: invalid SVIDConfig.TTL %s: use a positive duration",
			c.TTL)
	}
	return nil
}

// authorizeCaller returns the caller of an RPC and the SPIFFE ID it receives.
// A caller not entitled to an SVID gets PermissionDenied, as SPIFFE Workload
// API 5.2.1 and 6.2.1 recommend.
func (s *Server) authorizeCaller(ctx context.Context) (Caller, spiffeid.ID, error) {
	caller, err := callerFromContext(ctx)
	if err != nil {
		s.log.Warn("workload API SVID request denied", "error", err)
		return Caller{}, spiffeid.ID{}, err
	}
	if len(s.svids.AllowedUIDs) > 0 && !slices.Contains(s.svids.AllowedUIDs, caller.UID) {
		s.log.Warn("workload API SVID request denied: user not allowed", "uid", caller.UID,
			"pid", caller.PID)
		return Caller{}, spiffeid.ID{}, status.Errorf(codes.PermissionDenied,
			"Unix user %d may not receive SVIDs: it is not in "+
				"workload_api.svid_allowed_uids; add it there to issue SVIDs to this user",
			caller.UID)
	}
	id, err := s.svids.IDFor(caller)
	if err != nil {
		s.log.Warn("workload API SVID request denied: no SPIFFE ID for the caller",
			"uid", caller.UID, "gid", caller.GID, "pid", caller.PID, "error", err)
		return Caller{}, spiffeid.ID{}, status.Errorf(codes.PermissionDenied,
			"no SPIFFE ID for Unix user %d, group %d: %v", caller.UID, caller.GID, err)
	}
	return caller, id, nil
}

// countIssued reports one issued SVID to SVIDConfig.Issued.
func (s *Server) countIssued(svidType string) {
	if s.svids.Issued != nil {
		s.svids.Issued(svidType)
	}
}
