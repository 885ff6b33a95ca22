package node

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bundlex/bundlex/internal/forward"
)

func TestForwardServerCutsSlowBody(t *testing.T) {
	n, _ := startLimitedNode(t, time.Second)
	conn, err := net.DialTimeout("tcp", n.cfg.Cluster.RaftAddress, 10*time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })

	_, err = conn.Write([]byte{forward.ForwardByte})
	require.NoError(t, err)
	_, err = io.WriteString(conn, "POST /v1/bundles HTTP/1.1\r\nHost: a\r\n"+
		"Content-Type: application/json\r\nContent-Length: 60000\r\n\r\n{")
	require.NoError(t, err)

	// Send one more body byte every 200ms until the server closes the connection,
	// which forwardReadTimeout bounds.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		ticker := time.NewTicker(200 * time.Millisecond)
		defer ticker.Stop()
		for {
			select {
			case <-stop:
				return
			case <-ticker.C:
			}
			if _, err := conn.Write([]byte(" ")); err != nil {
				return
			}
		}
	}()

	deadline := 3 * forwardReadTimeout
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(deadline)))
	response, err := io.ReadAll(conn)
	require.False(t, errors.Is(err, os.ErrDeadlineExceeded),
		"forwarding connection still open after %s; received %q", deadline, response)
}
