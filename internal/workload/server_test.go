package workload

import (
	"context"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bundlex/bundlex/bundle"
	"github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

const noSVIDsMessage = "bundlex distributes bundles only: this Workload API issues no " +
	"SVIDs; set workload_api.svid_path_template on the node to issue SVIDs to local callers"

const noJWTSVIDsMessage = "bundlex distributes bundles only: this Workload API issues no " +
	"JWT-SVIDs; set workload_api.svid_path_template on the node to issue JWT-SVIDs to " +
	"local callers. FetchJWTBundles and ValidateJWTSVID work without it"

func simpleSource(t *testing.T) *MemorySource {
	t.Helper()
	return NewMemorySource(&Snapshot{
		Version: 1,
		Local:   newBundle(tdLocal, []*x509.Certificate{newCA(t, tdLocal)}, newJWTKey(t, "a1")),
	})
}

func TestSecurityHeaderRequired(t *testing.T) {
	ts := startServer(t, simpleSource(t), nil)
	client := rawClient(t, ts)
	cases := []struct {
		name string
		ctx  func(context.Context) context.Context
	}{
		{"header absent", func(ctx context.Context) context.Context { return ctx }},
		{"value not lowercase", func(ctx context.Context) context.Context {
			return metadata.AppendToOutgoingContext(ctx, securityHeaderKey, "TRUE")
		}},
		{"value false", func(ctx context.Context) context.Context {
			return metadata.AppendToOutgoingContext(ctx, securityHeaderKey, "false")
		}},
		{"header sent twice", func(ctx context.Context) context.Context {
			return metadata.AppendToOutgoingContext(ctx,
				securityHeaderKey, "true", securityHeaderKey, "false")
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := tc.ctx(testContext(t))
			x509Stream, err := client.FetchX509Bundles(ctx, &workload.X509BundlesRequest{})
			require.NoError(t, err)
			_, err = x509Stream.Recv()
			requireStatus(t, err, codes.InvalidArgument, "security header missing from request")

			jwtStream, err := client.FetchJWTBundles(ctx, &workload.JWTBundlesRequest{})
			require.NoError(t, err)
			_, err = jwtStream.Recv()
			requireStatus(t, err, codes.InvalidArgument, "security header missing from request")

			_, err = client.ValidateJWTSVID(ctx,
				&workload.ValidateJWTSVIDRequest{Audience: "a", Svid: "b"})
			requireStatus(t, err, codes.InvalidArgument, "security header missing from request")

			_, err = client.FetchJWTSVID(ctx, &workload.JWTSVIDRequest{Audience: []string{"a"}})
			requireStatus(t, err, codes.InvalidArgument, "security header missing from request")
		})
	}
}

func TestSVIDRequestsRejected(t *testing.T) {
	ts := startServer(t, simpleSource(t), nil)
	ctx := testContext(t)
	client, err := workloadapi.New(ctx, workloadapi.WithAddr(ts.addr()))
	require.NoError(t, err)
	t.Cleanup(func() { client.Close() })

	_, err = client.FetchX509SVID(ctx)
	requireStatus(t, err, codes.InvalidArgument, noSVIDsMessage)
	_, err = client.FetchX509Context(ctx)
	requireStatus(t, err, codes.InvalidArgument, noSVIDsMessage)
	_, err = client.FetchJWTSVID(ctx, jwtsvid.Params{Audience: "db"})
	requireStatus(t, err, codes.InvalidArgument, noJWTSVIDsMessage)
	// The X509Source of the X.509 message plays no part in a JWT-SVID request.
	require.NotContains(t, err.Error(), "X509Source")
}

// go-spiffe v2.9.0's X509Source and BundleSource watch FetchX509SVID. With
// InvalidArgument their constructors fail at once instead of retrying until the
// context ends.
func TestSVIDSourcesFailFast(t *testing.T) {
	ts := startServer(t, simpleSource(t), nil)
	options := workloadapi.WithClientOptions(workloadapi.WithAddr(ts.addr()))
	cases := []struct {
		name string
		open func(ctx context.Context) error
	}{
		{"bundle source", func(ctx context.Context) error {
			_, err := workloadapi.NewBundleSource(ctx, options)
			return err
		}},
		{"x509 source", func(ctx context.Context) error {
			_, err := workloadapi.NewX509Source(ctx, options)
			return err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t)
			start := time.Now()
			err := tc.open(ctx)
			requireStatus(t, err, codes.InvalidArgument, noSVIDsMessage)
			require.NoError(t, ctx.Err(), "the constructor must fail before its deadline")
			// The first retry of go-spiffe's backoff comes after one second.
			require.Less(t, time.Since(start), time.Second)
		})
	}
}

func TestBundleStreamWithoutLocalBundle(t *testing.T) {
	cases := []struct {
		name     string
		snapshot *Snapshot
	}{
		{"nil snapshot", nil},
		{"federated only", &Snapshot{Version: 3, Federated: map[spiffeid.TrustDomain]*bundle.Bundle{
			tdB: newBundle(tdB, []*x509.Certificate{newCA(t, tdB)}),
		}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, NewMemorySource(tc.snapshot), nil)
			client := rawClient(t, ts)
			ctx := withHeader(testContext(t))
			x509Stream, err := client.FetchX509Bundles(ctx, &workload.X509BundlesRequest{})
			require.NoError(t, err)
			_, err = x509Stream.Recv()
			requireStatus(t, err, codes.Unavailable, "no local trust bundle yet")
			jwtStream, err := client.FetchJWTBundles(ctx, &workload.JWTBundlesRequest{})
			require.NoError(t, err)
			_, err = jwtStream.Recv()
			requireStatus(t, err, codes.Unavailable, "no local trust bundle yet")
		})
	}
}

func TestStopEndsStreams(t *testing.T) {
	src := simpleSource(t)
	ts := startServer(t, src, nil)
	client := rawClient(t, ts)
	ctx := withHeader(testContext(t))
	x509Stream, err := client.FetchX509Bundles(ctx, &workload.X509BundlesRequest{})
	require.NoError(t, err)
	_, err = x509Stream.Recv()
	require.NoError(t, err)
	jwtStream, err := client.FetchJWTBundles(ctx, &workload.JWTBundlesRequest{})
	require.NoError(t, err)
	_, err = jwtStream.Recv()
	require.NoError(t, err)

	start := time.Now()
	ts.stop(t)
	require.Less(t, time.Since(start), DefaultShutdownTimeout,
		"Stop must end streams rather than wait for the shutdown timeout")
	_, err = x509Stream.Recv()
	requireStatus(t, err, codes.Unavailable, "shutting down")
	_, err = jwtStream.Recv()
	requireStatus(t, err, codes.Unavailable, "shutting down")
	_, err = os.Stat(ts.socket)
	require.ErrorIs(t, err, os.ErrNotExist, "closing the listener removes the socket")
}

func TestListenUnix(t *testing.T) {
	t.Run("socket mode 0777", func(t *testing.T) {
		ts := startServer(t, simpleSource(t), nil)
		info, err := os.Stat(ts.socket)
		require.NoError(t, err)
		require.Equal(t, os.ModeSocket, info.Mode().Type())
		require.Equal(t, SocketMode, info.Mode().Perm())
	})
	t.Run("stale socket replaced", func(t *testing.T) {
		path := filepath.Join(shortTempDir(t), "s.sock")
		stale, err := net.Listen("unix", path)
		require.NoError(t, err)
		stale.(*net.UnixListener).SetUnlinkOnClose(false)
		require.NoError(t, stale.Close())
		lis, err := ListenUnix(path)
		require.NoError(t, err)
		require.NoError(t, lis.Close())
	})
	t.Run("socket in use", func(t *testing.T) {
		ts := startServer(t, simpleSource(t), nil)
		_, err := ListenUnix(ts.socket)
		require.ErrorContains(t, err, "is in use by another process")
	})
	t.Run("regular file kept", func(t *testing.T) {
		path := filepath.Join(shortTempDir(t), "s.sock")
		require.NoError(t, os.WriteFile(path, []byte("x"), 0o600))
		_, err := ListenUnix(path)
		require.ErrorContains(t, err, "is not a socket")
		_, err = os.Stat(path)
		require.NoError(t, err)
	})
	t.Run("directory missing", func(t *testing.T) {
		path := filepath.Join(shortTempDir(t), "absent", "s.sock")
		_, err := ListenUnix(path)
		require.ErrorContains(t, err, "create it with the owner and mode")
	})
}

func TestNewServerRejectsBadConfig(t *testing.T) {
	src := simpleSource(t)
	validator := sourceValidator{source: src}
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"source missing", Config{Validator: validator}, "Config.Source is nil"},
		{"validator missing", Config{Source: src}, "Config.Validator is nil"},
		{"negative shutdown timeout", Config{Source: src, Validator: validator,
			ShutdownTimeout: -time.Second}, "invalid ShutdownTimeout -1s"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewServer(tc.cfg)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "wl")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// requireStatus checks the gRPC code of err and that its message contains want.
func requireStatus(t *testing.T, err error, code codes.Code, want string) {
	t.Helper()
	require.Error(t, err)
	st, ok := status.FromError(err)
	if !ok {
		// go-spiffe joins or wraps some errors; look for the status inside.
		var wrapped interface{ GRPCStatus() *status.Status }
		require.ErrorAs(t, err, &wrapped, "error %q carries no gRPC status", err)
		st = wrapped.GRPCStatus()
	}
	require.Equal(t, code, st.Code(), "status of %q", err)
	require.Contains(t, st.Message(), want)
}
