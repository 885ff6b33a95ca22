package clustertls

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	hraft "github.com/hashicorp/raft"
)

// ProbeRejectionWait is how long Probe waits, after its handshake, for the peer
// to reject this node's certificate. In TLS 1.3 the client's handshake ends
// before the server has checked the client certificate, and a server that
// accepts it sends nothing, so only a rejection is a message. A loopback or LAN
// peer rejects within milliseconds.
const ProbeRejectionWait = time.Second

// Probe checks that the node at address and this node accept each other over
// mutual TLS. It dials and completes the handshake with the current credentials,
// which checks the peer's certificate. Then it waits up to ProbeRejectionWait for
// the peer to reject this node's certificate. It sends no data, so the peer
// closes the connection without acting on it. ctx bounds the whole probe. Without
// a deadline, HandshakeTimeout plus ProbeRejectionWait bounds it.
//
// NOTE: a peer that takes longer than ProbeRejectionWait to check the
// certificate, for example on an overloaded host, passes the probe even when it
// then rejects the certificate.
func (l *StreamLayer) Probe(ctx context.Context, address string) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, l.cfg.HandshakeTimeout+ProbeRejectionWait)
		defer cancel()
	}
	conn, err := l.dial(ctx, hraft.ServerAddress(address))
	if err != nil {
		return err
	}
	defer conn.Close()

	verdict := time.Now().Add(ProbeRejectionWait)
	if deadline, _ := ctx.Deadline(); deadline.Before(verdict) {
		verdict = deadline
	}
	if err := conn.SetReadDeadline(verdict); err != nil {
		return fmt.Errorf("clustertls: probe Raft peer %s: %w", address, err)
	}
	_, err = conn.Read(make([]byte, 1))
	var netErr net.Error
	switch {
	case err == nil:
		// The peer spoke first, which no bundlex node does, but it accepted the
		// certificate.
		return nil
	case errors.Is(err, os.ErrDeadlineExceeded) ||
		(errors.As(err, &netErr) && netErr.Timeout()):
		return nil
	}
	l.counters.dialFailures.Add(1)
	return fmt.Errorf("clustertls: Raft peer %s closed the connection after the TLS "+
		"handshake: %w; it rejected this node's certificate, so check that the peer "+
		"trusts this cluster's CA", address, err)
}
