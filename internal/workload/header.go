package workload

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// SPIFFE Workload Endpoint 3: every request carries the metadata key
// "workload.spiffe.io" with the value "true", compared case-sensitively.
const (
	securityHeaderKey   = "workload.spiffe.io"
	securityHeaderValue = "true"
)

// errSecurityHeaderMissing is the status that SPIFFE Workload Endpoint 6
// requires for a request without the security header. Clients must not retry.
var errSecurityHeaderMissing = status.Error(codes.InvalidArgument,
	"security header missing from request")

func hasSecurityHeader(ctx context.Context) bool {
	md, ok := metadata.FromIncomingContext(ctx)
	if !ok {
		return false
	}
	values := md.Get(securityHeaderKey)
	return len(values) == 1 && values[0] == securityHeaderValue
}

func requireSecurityHeaderUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo,
	handler grpc.UnaryHandler) (any, error) {
	if !hasSecurityHeader(ctx) {
		return nil, errSecurityHeaderMissing
	}
	return handler(ctx, req)
}

func requireSecurityHeaderStream(srv any, stream grpc.ServerStream, _ *grpc.StreamServerInfo,
	handler grpc.StreamHandler) error {
	if !hasSecurityHeader(stream.Context()) {
		return errSecurityHeaderMissing
	}
	return handler(srv, stream)
}
