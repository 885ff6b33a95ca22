package workload

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
)

// ValidateJWTSVID validates a JWT-SVID through the configured JWTValidator.
// SPIFFE Workload API 6.2.3: audience and token are mandatory, and 4.5 requires
// InvalidArgument for a missing mandatory field. A token that fails validation
// is also InvalidArgument, with the validator's message. An error that wraps
// ErrValidatorUnavailable means the node cannot validate the token yet, so the
// status is Unavailable, which clients retry (SPIFFE Workload Endpoint 6).
func (s *Server) ValidateJWTSVID(_ context.Context, req *workload.ValidateJWTSVIDRequest) (
	*workload.ValidateJWTSVIDResponse, error) {
	if req.GetAudience() == "" {
		return nil, status.Error(codes.InvalidArgument, "audience must be specified")
	}
	if req.GetSvid() == "" {
		return nil, status.Error(codes.InvalidArgument, "svid must be specified")
	}
	id, claims, err := s.validator.ValidateJWTSVID(req.GetSvid(), req.GetAudience())
	if err != nil {
		// The token is a credential: log the outcome, never the token.
		s.log.Debug("JWT-SVID rejected", "audience", req.GetAudience(), "error", err)
		if errors.Is(err, ErrValidatorUnavailable) {
			return nil, status.Error(codes.Unavailable, err.Error())
		}
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if id == "" {
		s.log.Error("JWT-SVID validator returned no SPIFFE ID and no error",
			"audience", req.GetAudience())
		return nil, status.Error(codes.Internal, "validator returned no SPIFFE ID")
	}
	claimStruct, err := claimsToStruct(claims)
	if err != nil {
		s.log.Error("encode JWT-SVID claims failed", "spiffe_id", id, "error", err)
		return nil, status.Errorf(codes.Internal, "encode claims: %v", err)
	}
	return &workload.ValidateJWTSVIDResponse{SpiffeId: id, Claims: claimStruct}, nil
}

// ErrValidatorUnavailable is wrapped by a JWTValidator's error when it cannot
// validate any token for now, for example while the node loads its replicated
// state after a start. ValidateJWTSVID then returns Unavailable instead of
// InvalidArgument.
var ErrValidatorUnavailable = errors.New("validator unavailable")

// claimsToStruct converts claims through JSON, because structpb accepts only
// the types encoding/json decodes into (a validator may return []string for
// "aud", for example).
func claimsToStruct(claims map[string]any) (*structpb.Struct, error) {
	raw, err := json.Marshal(claims)
	if err != nil {
		return nil, err
	}
	var generic map[string]any
	if err := json.Unmarshal(raw, &generic); err != nil {
		return nil, err
	}
	return structpb.NewStruct(generic)
}
