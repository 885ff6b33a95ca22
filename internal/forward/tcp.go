package forward

import (
	"errors"
	"fmt"
	"net"
	"time"

	hraft "github.com/hashicorp/raft"
)

// TCPLayer is a plain TCP stream layer, for a single node or a cluster on one
// host. Clusters across hosts use the mutual TLS layer instead.
type TCPLayer struct {
	listener  net.Listener
	advertise net.Addr
}

// NewTCPLayer listens on bind and advertises advertise (bind when empty).
func NewTCPLayer(bind, advertise string) (*TCPLayer, error) {
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, fmt.Errorf("forward: listen on Raft address %s: %w", bind, err)
	}
	addr := ln.Addr()
	if advertise != "" {
		resolved, err := net.ResolveTCPAddr("tcp", advertise)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("forward: Raft advertise address %s: %w", advertise, err)
		}
		addr = resolved
	}
	if tcp, ok := addr.(*net.TCPAddr); ok && tcp.IP.IsUnspecified() {
		ln.Close()
		return nil, errors.New("forward: Raft address " + addr.String() + " is not an " +
			"address other nodes can dial; set an advertise address")
	}
	return &TCPLayer{listener: ln, advertise: addr}, nil
}

func (l *TCPLayer) Accept() (net.Conn, error) { return l.listener.Accept() }
func (l *TCPLayer) Close() error              { return l.listener.Close() }
func (l *TCPLayer) Addr() net.Addr            { return l.advertise }

// Dial connects to another node's Raft address.
func (l *TCPLayer) Dial(address hraft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return net.DialTimeout("tcp", string(address), timeout)
}
