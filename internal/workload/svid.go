package workload

import (
	"context"

	"github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// errNoSVIDs is the status of the SVID RPCs. The package documentation explains why the
// code is InvalidArgument and not PermissionDenied or Unimplemented.
var errNoSVIDs = status.Error(codes.InvalidArgument,
	"bundlex distributes bundles only; it issues no SVIDs over the Workload API")

// FetchX509SVID returns errNoSVIDs.
func (s *Server) FetchX509SVID(_ *workload.X509SVIDRequest,
	_ grpc.ServerStreamingServer[workload.X509SVIDResponse]) error {
	return errNoSVIDs
}

// FetchJWTSVID returns errNoSVIDs.
func (s *Server) FetchJWTSVID(context.Context, *workload.JWTSVIDRequest) (
	*workload.JWTSVIDResponse, error) {
	return nil, errNoSVIDs
}
