package workload

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"
)

// staleSocketDialTimeout bounds the probe that distinguishes a live socket from
// one left behind by a process that was killed.
const staleSocketDialTimeout = time.Second

// ListenUnix listens on a Unix socket at path with mode SocketMode. The
// directory must exist: its permissions decide which workloads may connect, so
// this function does not create it with some default. A socket file that no
// process accepts on is replaced. Closing the listener removes the socket file.
func ListenUnix(path string) (net.Listener, error) {
	dir := filepath.Dir(path)
	info, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("workload: socket directory %s: %w; create it with the "+
			"owner and mode that admit the workloads", dir, err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("workload: socket directory %s is not a directory", dir)
	}
	if err := removeStaleSocket(path); err != nil {
		return nil, err
	}
	lis, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("workload: listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, SocketMode); err != nil {
		lis.Close()
		return nil, fmt.Errorf("workload: set mode %o on %s: %w", SocketMode, path, err)
	}
	return lis, nil
}

// removeStaleSocket deletes the socket at path when nothing accepts
// connections on it. Any other kind of file is left alone and reported.
func removeStaleSocket(path string) error {
	info, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("workload: inspect socket path %s: %w", path, err)
	}
	if info.Mode().Type() != os.ModeSocket {
		return fmt.Errorf("workload: %s exists and is not a socket; remove it or choose "+
			"another socket path", path)
	}
	conn, err := net.DialTimeout("unix", path, staleSocketDialTimeout)
	if err == nil {
		conn.Close()
		return fmt.Errorf("workload: socket %s is in use by another process; stop it or "+
			"choose another socket path", path)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("workload: remove stale socket %s: %w", path, err)
	}
	return nil
}
