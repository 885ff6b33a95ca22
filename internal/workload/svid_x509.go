package workload

import (
	"crypto/x509"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// minX509SVIDRenewal is the shortest wait between two X509-SVIDs for one
// stream. It keeps a stream from minting in a loop when the issuer returns an
// SVID that is nearly expired, such as one capped by a CA about to expire.
const minX509SVIDRenewal = time.Second

// FetchX509SVID streams an X509-SVID for the caller, with the X.509 bundle of
// the local trust domain and those of every federated one. With SVID issuance
// off it returns errNoSVIDs. A new message goes out when the bundles change
// and when the SVID reaches half of its lifetime, with a new SVID and key
// (SPIFFE Workload API 4.3: every message carries the full set).
func (s *Server) FetchX509SVID(_ *workload.X509SVIDRequest,
	stream grpc.ServerStreamingServer[workload.X509SVIDResponse]) error {
	if s.svids == nil {
		return errNoSVIDs
	}
	ctx := stream.Context()
	caller, id, err := s.authorizeCaller(ctx)
	if err != nil {
		return err
	}
	// Subscribe before the first snapshot so that no change falls in between.
	changes, cancel := s.source.Subscribe()
	defer cancel()
	state := &x509SVIDStream{s: s, caller: caller, id: id}
	s.log.Debug("workload API X509-SVID stream opened", "uid", caller.UID,
		"pid", caller.PID, "spiffe_id", id.String())
	defer s.log.Debug("workload API X509-SVID stream closed", "uid", caller.UID,
		"pid", caller.PID, "spiffe_id", id.String())

	renewal := time.NewTimer(time.Hour)
	defer renewal.Stop()
	for {
		resp, err := state.next(s.source.Snapshot(), time.Now())
		if err != nil {
			return err
		}
		if resp != nil {
			if err := stream.Send(resp); err != nil {
				return err
			}
		}
		renewal.Reset(time.Until(state.renewAt))
		select {
		case <-changes:
		case <-renewal.C:
		case <-s.stopping:
			return errShuttingDown
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		}
	}
}

// x509SVIDStream is the state of one FetchX509SVID stream.
type x509SVIDStream struct {
	s      *Server
	caller Caller
	id     spiffeid.ID

	svid    *x509svid.SVID
	chain   []byte // DER certificates of svid, leaf first
	key     []byte // PKCS#8 DER private key of svid
	renewAt time.Time
	// sent is false until the current SVID went out.
	sent        bool
	sentBundles map[string][]byte
	// unchained is true while the current SVID does not chain to the local
	// bundle, so that the warning is logged once per episode.
	unchained bool
}

// next returns the message to send for snapshot, or nil when the client
// already has its content. It mints a new SVID when there is none, when the
// current one reached its renewal time, or when one already sent no longer
// chains to the local bundle.
func (st *x509SVIDStream) next(snapshot *Snapshot, now time.Time) (
	*workload.X509SVIDResponse, error) {
	bundles, err := x509BundleMap(snapshot)
	if err != nil {
		return nil, err
	}
	local := snapshot.Local
	chains := st.chainsTo(local.TrustDomain, local.X509Authorities, now)
	if st.svid == nil || !now.Before(st.renewAt) || (st.sent && !chains) {
		if err := st.mint(now); err != nil {
			return nil, err
		}
		chains = st.chainsTo(local.TrustDomain, local.X509Authorities, now)
	}
	// In a cluster every node signs with its own CA, which joins the local
	// bundle once the leader publishes the node's keys. An SVID sent earlier
	// would fail verification everywhere, so the stream waits for the bundle.
	if !chains {
		if !st.unchained {
			st.s.log.Warn("X509-SVID held back: the CA that signed it is not in the local "+
				"bundle yet; waiting for the bundle to change", "uid", st.caller.UID,
				"spiffe_id", st.id.String())
		}
		st.unchained = true
		return nil, nil
	}
	st.unchained = false
	if st.sent && sameBundleMap(st.sentBundles, bundles) {
		return nil, nil
	}
	st.sent, st.sentBundles = true, bundles
	return st.response(local.TrustDomain.IDString(), bundles), nil
}

// mint replaces the SVID with a new one and sets its renewal time.
func (st *x509SVIDStream) mint(now time.Time) error {
	svid, err := st.s.svids.Issuer.MintX509SVID(st.id, st.s.svids.TTL)
	if err != nil {
		st.s.log.Error("issue X509-SVID failed", "uid", st.caller.UID,
			"spiffe_id", st.id.String(), "error", err)
		return status.Errorf(codes.Unavailable, "issue X509-SVID for %s: %v; retry with "+
			"a backoff", st.id, err)
	}
	key, err := x509.MarshalPKCS8PrivateKey(svid.PrivateKey)
	if err != nil {
		st.s.log.Error("encode X509-SVID key failed", "spiffe_id", st.id.String(),
			"error", err)
		return status.Errorf(codes.Internal, "encode the X509-SVID private key: %v", err)
	}
	var chain []byte
	for _, cert := range svid.Certificates {
		chain = append(chain, cert.Raw...)
	}
	expires := svid.Certificates[0].NotAfter
	st.svid, st.chain, st.key, st.sent = svid, chain, key, false
	st.renewAt = now.Add(max(expires.Sub(now)/2, minX509SVIDRenewal))
	st.s.countIssued(SVIDTypeX509)
	st.s.log.Debug("issued X509-SVID", "uid", st.caller.UID, "gid", st.caller.GID,
		"pid", st.caller.PID, "spiffe_id", st.id.String(), "expires", expires,
		"renew_at", st.renewAt)
	return nil
}

// chainsTo reports whether the current SVID verifies against the X.509
// authorities of the local trust domain at now.
func (st *x509SVIDStream) chainsTo(td spiffeid.TrustDomain, authorities []*x509.Certificate,
	now time.Time) bool {
	if st.svid == nil {
		return false
	}
	_, _, err := x509svid.Verify(st.svid.Certificates,
		x509bundle.FromX509Authorities(td, authorities), x509svid.WithTime(now))
	return err == nil
}

// response builds the message with the SVID and the local bundle, and with
// every other trust domain's bundle as a federated bundle.
func (st *x509SVIDStream) response(localID string,
	bundles map[string][]byte) *workload.X509SVIDResponse {
	federated := make(map[string][]byte, len(bundles))
	for id, der := range bundles {
		if id != localID {
			federated[id] = der
		}
	}
	return &workload.X509SVIDResponse{
		Svids: []*workload.X509SVID{{
			SpiffeId:    st.id.String(),
			X509Svid:    st.chain,
			X509SvidKey: st.key,
			Bundle:      bundles[localID],
		}},
		FederatedBundles: federated,
	}
}
