package testutil

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TrickleBody writes one space to conn every interval, as a client that sends its
// request body too slowly, until a write fails or the test ends.
func TrickleBody(t *testing.T, conn net.Conn, interval time.Duration) {
	t.Helper()
	stop := make(chan struct{})
	done := make(chan struct{})
	t.Cleanup(func() {
		close(stop)
		<-done
	})
	go func() {
		defer close(done)
		ticker := time.NewTicker(interval)
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
}

// RequireServerCloses fails the test unless the server closes conn within
// deadline. Whatever the server sent before closing is read and discarded.
func RequireServerCloses(t *testing.T, conn net.Conn, deadline time.Duration) {
	t.Helper()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(deadline)))
	data, err := io.ReadAll(conn)
	require.False(t, errors.Is(err, os.ErrDeadlineExceeded),
		"connection still open after %s; received %q", deadline, data)
}
