package workload

import (
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// readCaller reads the credentials that the kernel recorded for the process
// that opened conn. Only a Unix socket connection has them.
func readCaller(conn net.Conn) (Caller, error) {
	unixConn, ok := conn.(*net.UnixConn)
	if !ok {
		return Caller{}, fmt.Errorf("connection from %s is not a Unix socket connection",
			conn.RemoteAddr())
	}
	raw, err := unixConn.SyscallConn()
	if err != nil {
		return Caller{}, fmt.Errorf("access the socket: %w", err)
	}
	var cred *unix.Ucred
	var credErr error
	err = raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	})
	if err == nil {
		err = credErr
	}
	if err != nil {
		return Caller{}, fmt.Errorf("read SO_PEERCRED: %w", err)
	}
	return Caller{PID: cred.Pid, UID: cred.Uid, GID: cred.Gid}, nil
}
