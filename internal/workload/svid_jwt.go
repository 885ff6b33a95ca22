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
// SVID issuance off it returns errNoJWTSVIDs. SPIFFE Workload API 6.2.1 makes the
// audience mandatory, so a request without one gets InvalidArgument (4.5). A
// request for a SPIFFE ID that the caller does not have gets PermissionDenied.
func (s *Server) FetchJWTSVID(ctx context.Context, req *workload.JWTSVIDRequest) (
	*workload.JWTSVIDResponse, error) {
	if s.svids == nil {
		return nil, errNoJWTSVIDs
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
	snapshot := s.source.Snapshot()
	if snapshot == nil || snapshot.Local == nil {
		return nil, errNoLocalBundle
	}
	token, err := s.svids.Issuer.MintJWTSVID(id, audience, s.svids.TTL)
	if err != nil {
		s.log.Error("issue JWT-SVID failed", "uid", caller.UID, "spiffe_id", id.String(),
			"error", err)
		return nil, status.Errorf(codes.Unavailable, "issue JWT-SVID for %s: %v; retry "+
			"with a backoff", id, err)
	}
	// In a cluster every node signs with its own key, which joins the local
	// bundle once the leader publishes the node's keys. Until then no verifier
	// accepts the token, so the client gets Unavailable and retries. The check
	// also reads the expiry, which the issuer may have capped below TTL.
	parsed, err := jwtsvid.ParseAndValidate(token, snapshot.Local.JWTBundle(), audience)
	if err != nil {
		// The token is a credential: log the outcome, never the token.
		s.log.Warn("JWT-SVID held back: the local bundle does not verify it yet",
			"uid", caller.UID, "spiffe_id", id.String(), "error", err)
		return nil, status.Errorf(codes.Unavailable, "the JWT-SVID for %s does not verify "+
			"with the local bundle: %v; the node's signing key may not be published yet, "+
			"so retry with a backoff", id, err)
	}
	s.countIssued(SVIDTypeJWT)
	s.log.Debug("issued JWT-SVID", "uid", caller.UID, "gid", caller.GID, "pid", caller.PID,
		"spiffe_id", id.String(), "audience", audience, "expires", parsed.Expiry)
	return &workload.JWTSVIDResponse{Svids: []*workload.JWTSVID{{
		SpiffeId: id.String(),
		Svid:     token,
	}}}, nil
}
