package workload

import (
	"context"

	"github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// errShuttingDown ends bundle streams on Stop. SPIFFE Workload Endpoint 6:
// clients retry Unavailable with a backoff, so they reconnect to the next server.
var errShuttingDown = status.Error(codes.Unavailable,
	"workload API server is shutting down; reconnect with a backoff")

// FetchX509Bundles streams the X.509 authorities of the local and every
// federated trust domain. SPIFFE Workload API 4.3: the first message goes out
// at once and every message carries the full set.
func (s *Server) FetchX509Bundles(_ *workload.X509BundlesRequest,
	stream grpc.ServerStreamingServer[workload.X509BundlesResponse]) error {
	return s.streamBundles(stream.Context(), "x509", x509BundleMap,
		func(bundles map[string][]byte) error {
			return stream.Send(&workload.X509BundlesResponse{Bundles: bundles})
		})
}

// FetchJWTBundles streams the JWT bundles of the local and every federated
// trust domain, each as a JWK Set.
func (s *Server) FetchJWTBundles(_ *workload.JWTBundlesRequest,
	stream grpc.ServerStreamingServer[workload.JWTBundlesResponse]) error {
	return s.streamBundles(stream.Context(), "jwt", jwtBundleMap,
		func(bundles map[string][]byte) error {
			return stream.Send(&workload.JWTBundlesResponse{Bundles: bundles})
		})
}

// streamBundles sends build's result now and again whenever a source change
// alters it, until the client leaves, the server stops or build fails. A change
// that leaves the result as it was (another kind of key, a sequence number)
// sends nothing.
func (s *Server) streamBundles(ctx context.Context, kind string,
	build func(*Snapshot) (map[string][]byte, error),
	send func(map[string][]byte) error) error {
	// Subscribe before the first snapshot so that no change falls in between.
	changes, cancel := s.source.Subscribe()
	defer cancel()
	s.log.Debug("workload API bundle stream opened", "kind", kind)
	defer s.log.Debug("workload API bundle stream closed", "kind", kind)

	var last map[string][]byte
	for {
		bundles, err := build(s.source.Snapshot())
		if err != nil {
			s.log.Warn("workload API bundle stream ended", "kind", kind, "error", err)
			return err
		}
		if last == nil || !sameBundleMap(last, bundles) {
			if err := send(bundles); err != nil {
				return err
			}
			last = bundles
		}
		select {
		case <-changes:
		case <-s.stopping:
			return errShuttingDown
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		}
	}
}
