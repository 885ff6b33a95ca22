package workload

import (
	"context"

	"github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// FetchJWTSVID returns a JWT-SVID for the caller's SPIFFE ID and the requested
// audience, signed for SVIDConfig.TTL or the issuer's shorter maximum. With
// SVID issuance off it returns errNoSVIDs. SPIFFE Workload API 6.2.1 makes the
// audience mandatory, so a request without one gets InvalidArgument (4.5). A
// request for a SPIFFE ID that the caller does not have gets PermissionDenied.
func (s *Server) FetchJWTSVID(ctx context.Context, req *workload.JWTSVIDRequest) (
	*workload.JWTSVIDResponse, error) {
	if s.svids == nil {
		return nil, errNoSVIDs
	}
	caller, id, err := s.authorizeCaller(ctx)
	if err != nil {
		return nil, err
	}
	audience := req.GetAudience()
	if len(audience) == 0 {
		return nil, status.Error(codes.InvalidArgument, "audience must be specified")
	}
	for _, aud := range audience {
		if aud == "" {
			return nil, status.Errorf(codes.InvalidArgument,
				"audience %q contains an empty value", audience)
		}
	}
	if requested := req.GetSpiffeId(); requested != "" && requested != id.String() {
		s.log.Warn("workload API JWT-SVID request denied: another SPIFFE ID requested",
			"uid", caller.UID, "spiffe_id", id.String(), "requested", requested)
		return nil, status.Errorf(codes.PermissionDenied, "Unix user %d receives %s and "+
			"may not request a JWT-SVID for %s", caller.UID, id, requested)
	}
	token, err := s.svids.Issuer.MintJWTSVID(id, audience, s.svids.TTL)
	if err != nil {
		s.log.Error("issue JWT-SVID failed", "uid", caller.UID, "spiffe_id", id.String(),
			"error", err)
		return nil, status.Errorf(codes.Unavailable, "issue JWT-SVID for %s: %v; retry "+
			"with a backoff", id, err)
	}
	// The issuer's own token, parsed for its expiry, which the issuer may have
	// capped below TTL. The token is never logged.
	parsed, err := jwtsvid.ParseInsecure(token, audience)
	if err != nil {
		s.log.Error("the issuer returned a JWT-SVID that does not parse", "spiffe_id",
			id.String(), "error", err)
		return nil, status.Errorf(codes.Internal, "parse the issued JWT-SVID: %v", err)
	}
	s.countIssued(SVIDTypeJWT)
	s.log.Debug("issued JWT-SVID", "uid", caller.UID, "gid", caller.GID, "pid", caller.PID,
		"spiffe_id", id.String(), "audience", audience, "expires", parsed.Expiry)
	return &workload.JWTSVIDResponse{Svids: []*workload.JWTSVID{{
		SpiffeId: id.String(),
		Svid:     token,
	}}}, nil
}
