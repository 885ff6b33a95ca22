//go:build !linux

package workload

import (
	"errors"
	"net"
)

// readCaller returns an error, because the peer credentials are read with
// SO_PEERCRED, which only Linux has.
// NOTE: the BSDs and macOS offer getpeereid and LOCAL_PEERCRED, which this
// package does not use yet, so the SVID RPCs reject every caller there.
func readCaller(net.Conn) (Caller, error) {
	return Caller{}, errors.New("reading a caller's Unix credentials is implemented " +
		"only on Linux")
}
