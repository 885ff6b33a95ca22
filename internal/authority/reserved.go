package authority

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// ReservedPathSegment is the first path segment of the SPIFFE IDs that bundlex
// keeps for its own identities. The default bundle endpoint ID,
// spiffe://<trust domain>/bundlex, is one of them. Peers accept an https_spiffe
// bundle endpoint by its SPIFFE ID alone (SPIFFE Federation 5.2.2.4), so a
// workload that held that ID could serve them any bundle.
const ReservedPathSegment = "bundlex"

// ErrReservedID marks a request to mint one of the node's own identities for
// someone else. CheckMintID returns it.
var ErrReservedID = errors.New("authority: reserved SPIFFE ID")

// IsReservedPath reports whether path, the path of a SPIFFE ID, is
// /ReservedPathSegment or below it.
func IsReservedPath(path string) bool {
	reserved := "/" + ReservedPathSegment
	return path == reserved || strings.HasPrefix(path, reserved+"/")
}

// CheckMintID checks an ID that an operator or a workload requests an SVID for.
// It rejects a trust domain ID, which names no workload (SPIFFE-ID 2.2), and
// the node's own identities: endpointID, the SPIFFE ID of the node's bundle
// endpoint, and every ID under the reserved path. A rejected own identity
// returns an error that wraps ErrReservedID.
func CheckMintID(id, endpointID spiffeid.ID) error {
	if err := requirePath(id, "an SVID"); err != nil {
		return err
	}
	if id == endpointID {
		return fmt.Errorf("%w: %s is the SPIFFE ID of this node's bundle endpoint, which "+
			"peers require from its https_spiffe endpoint, so it is never minted; use an ID "+
			"of a workload, such as %s/workload", ErrReservedID, id, id.TrustDomain().IDString())
	}
	if IsReservedPath(id.Path()) {
		return fmt.Errorf("%w: %s is under %s/%s, the path that bundlex keeps for its own "+
			"identities, so it is never minted; use an ID outside that path, such as "+
			"%s/workload", ErrReservedID, id, id.TrustDomain().IDString(), ReservedPathSegment,
			id.TrustDomain().IDString())
	}
	return nil
}

// requirePath rejects a trust domain ID, which identifies the trust domain and
// no workload (SPIFFE-ID 2.2), so that no SVID names one. kind names the
// credential in the message.
func requirePath(id spiffeid.ID, kind string) error {
	if id.Path() != "" {
		return nil
	}
	return fmt.Errorf("authority: SPIFFE ID %s has no path; %s needs a workload path such "+
		"as %s/workload", id, kind, id)
}
