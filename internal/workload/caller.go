package workload

import (
	"context"
	"errors"
	"net"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// Caller is the process at the other end of a Workload API connection, as the
// kernel reported it when the process connected to the socket (SO_PEERCRED on
// Linux). A process that changes its user afterwards, or hands the connection
// to another process, keeps the credentials of the connect call.
type Caller struct {
	PID int32
	UID uint32
	GID uint32
}

// callerAuthType is the AuthType of callerInfo.
const callerAuthType = "unix-peer-credentials"

// callerInfo is the gRPC AuthInfo of one connection. It contains the caller, or
// the error that prevented reading the caller's credentials.
type callerInfo struct {
	credentials.CommonAuthInfo
	caller Caller
	err    error
}

func (callerInfo) AuthType() string { return callerAuthType }

// peerCredentials is a server-side gRPC TransportCredentials that exchanges no
// bytes with the client. It reads the kernel's socket state for the connecting
// process, an out-of-band check that SPIFFE Workload Endpoint 5 recommends in
// place of client authentication, which it forbids. Clients connect with
// insecure credentials, as go-spiffe does. A connection whose credentials
// cannot be read is still accepted, because the bundle RPCs need none, and
// the SVID RPCs reject it.
type peerCredentials struct{}

func (peerCredentials) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	caller, err := readCaller(conn)
	return conn, callerInfo{
		CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.NoSecurity},
		caller:         caller,
		err:            err,
	}, nil
}

func (peerCredentials) ClientHandshake(context.Context, string, net.Conn) (net.Conn,
	credentials.AuthInfo, error) {
	return nil, nil, errors.New("workload: peer credentials are for the server only")
}

func (peerCredentials) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: callerAuthType}
}

func (c peerCredentials) Clone() credentials.TransportCredentials { return c }

func (peerCredentials) OverrideServerName(string) error { return nil }

// callerFromContext returns the caller of an RPC, or PermissionDenied when
// its credentials are unknown.
func callerFromContext(ctx context.Context) (Caller, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return Caller{}, status.Error(codes.PermissionDenied,
			"the caller's Unix credentials are unknown; connect over the Workload API socket")
	}
	info, ok := p.AuthInfo.(callerInfo)
	if !ok {
		return Caller{}, status.Error(codes.PermissionDenied,
			"the caller's Unix credentials are unknown; connect over the Workload API socket")
	}
	if info.err != nil {
		return Caller{}, status.Errorf(codes.PermissionDenied,
			"read the caller's Unix credentials: %v", info.err)
	}
	return info.caller, nil
}
