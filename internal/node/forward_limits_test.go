package node

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bundlex/bundlex/internal/forward"
	"github.com/bundlex/bundlex/internal/testutil"
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

	// One more body byte every 200ms until the server closes the connection,
	// which forwardReadTimeout bounds.
	testutil.TrickleBody(t, conn, 200*time.Millisecond)
	testutil.RequireServerCloses(t, conn, 3*forwardReadTimeout)
}
