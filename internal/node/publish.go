package node

import (
	"context"
	"errors"
	"fmt"

	"github.com/bundlex/bundlex/bundle"
	"github.com/bundlex/bundlex/raft"
)

// maxPublishAttempts bounds the compare-and-set retries of one local bundle write.
const maxPublishAttempts = 5

// publishLocal writes the local bundle with the given keys when they differ from
// the stored ones. The sequence is the stored one plus one (SPIFFE Trust Domain and
// Bundle 4.1.1), and the write is a compare-and-set on the stored sequence, so
// two concurrent writers cannot both publish the same sequence.
func (n *Node) publishLocal(ctx context.Context, keys *bundle.Bundle) error {
	keys.TrustDomain = n.td
	keys.RefreshHint = n.cfg.BundleEndpoint.RefreshHint
	for attempt := 1; ; attempt++ {
		var prev uint64
		if rec, ok := n.store.LocalBundle(); ok {
			stored, err := parseRecord(rec)
			if err != nil {
				return err
			}
			if bundle.SameKeys(stored, keys) && stored.RefreshHint == keys.RefreshHint {
				return nil
			}
			prev = rec.Sequence
		}
		next := keys.Clone()
		next.Sequence, next.HasSequence = prev+1, true
		rec, err := newRecord(next, raft.SourceLocal, n.now())
		if err != nil {
			return err
		}
		err = n.store.Apply(ctx, raft.PutLocalBundle{Record: rec, PrevSequence: prev})
		if errors.Is(err, raft.ErrConflict) && attempt < maxPublishAttempts {
			continue
		}
		if err != nil {
			return fmt.Errorf("node: publish local bundle sequence %d: %w", next.Sequence, err)
		}
		x509Keys, jwtKeys := next.KeyCount()
		n.log.Info("published local bundle", "trust_domain", n.td.Name(),
			"sequence", next.Sequence, "x509_keys", x509Keys, "jwt_keys", jwtKeys)
		return nil
	}
}

// builtinKeys returns the public keys of the built-in authority as a bundle.
func (n *Node) builtinKeys() *bundle.Bundle {
	pub := n.builtin.PublicKeys()
	b := bundle.New(n.td)
	b.X509Authorities = append(b.X509Authorities, pub.X509Authorities...)
	for kid, key := range pub.JWTAuthorities {
		b.JWTAuthorities = append(b.JWTAuthorities, bundle.JWTAuthority{KeyID: kid, PublicKey: key})
	}
	b.Normalize()
	return b
}

// fileKeys reads the local bundle from the file authority.
func (n *Node) fileKeys(data []byte) (*bundle.Bundle, error) {
	format, err := bundle.ParseFormat(n.cfg.Authority.BundleFormat)
	if err != nil {
		return nil, err
	}
	b, warnings, err := bundle.Decode(n.td, data, format)
	if err != nil {
		return nil, fmt.Errorf("node: authority.bundle_path %s: %w; keeping the published bundle",
			n.cfg.Authority.BundlePath, err)
	}
	for _, w := range warnings {
		n.log.Warn("skipped unusable key in authority bundle file", "key", w.String(),
			"path", n.cfg.Authority.BundlePath)
	}
	return b, nil
}
