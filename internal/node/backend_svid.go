package node

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/bundlex/bundlex/bundle"
	"github.com/bundlex/bundlex/internal/admin"
	"github.com/bundlex/bundlex/internal/authority"
)

// MintX509SVID issues an X509-SVID for an ID of the local trust domain.
func (b *backend) MintX509SVID(_ context.Context, req admin.MintX509SVIDRequest) (admin.X509SVID, error) {
	id, ttl, err := b.n.checkMint(req.SPIFFEID, req.TTLSeconds, b.n.cfg.Authority.X509SVIDMaxTTL)
	if err != nil {
		return admin.X509SVID{}, err
	}
	svid, err := b.n.builtin.MintX509SVID(id, ttl)
	if err != nil {
		return admin.X509SVID{}, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(svid.PrivateKey)
	if err != nil {
		return admin.X509SVID{}, err
	}
	var certs strings.Builder
	for _, c := range svid.Certificates {
		_ = pem.Encode(&certs, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	b.n.log.Info("minted X509-SVID", "spiffe_id", id.String(),
		"expires", svid.Certificates[0].NotAfter)
	return admin.X509SVID{
		SPIFFEID:  id.String(),
		CertsPEM:  certs.String(),
		KeyPEM:    string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})),
		ExpiresAt: svid.Certificates[0].NotAfter,
	}, nil
}

// jwtAlgorithms are the signature algorithms of tokens the built-in authority mints.
var jwtAlgorithms = []jose.SignatureAlgorithm{jose.ES256}

// MintJWTSVID issues a JWT-SVID for an ID of the local trust domain.
func (b *backend) MintJWTSVID(_ context.Context, req admin.MintJWTSVIDRequest) (admin.JWTSVID, error) {
	id, ttl, err := b.n.checkMint(req.SPIFFEID, req.TTLSeconds, b.n.cfg.Authority.JWTSVIDMaxTTL)
	if err != nil {
		return admin.JWTSVID{}, err
	}
	if len(req.Audience) == 0 {
		return admin.JWTSVID{}, invalidArg("audience is missing: a JWT-SVID needs at least one")
	}
	token, err := b.n.builtin.MintJWTSVID(id, req.Audience, ttl)
	if err != nil {
		return admin.JWTSVID{}, err
	}
	expires := b.n.now().Add(ttl)
	if parsed, err := jwt.ParseSigned(token, jwtAlgorithms); err == nil {
		var claims jwt.Claims
		if parsed.UnsafeClaimsWithoutVerification(&claims) == nil && claims.Expiry != nil {
			expires = claims.Expiry.Time()
		}
	}
	b.n.log.Info("minted JWT-SVID", "spiffe_id", id.String(), "audience", req.Audience,
		"expires", expires)
	return admin.JWTSVID{SPIFFEID: id.String(), Token: token, ExpiresAt: expires}, nil
}

// checkMint validates a mint request: the built-in authority, an ID in the local
// trust domain and a TTL within the configured maximum (0 means the maximum).
func (n *Node) checkMint(rawID string, ttlSeconds int64, maxTTL time.Duration) (spiffeid.ID, time.Duration, error) {
	if n.builtin == nil {
		return spiffeid.ID{}, 0, invalidArg("authority.type is file: this node holds no " +
			"signing keys; mint SVIDs with the CA that writes authority.bundle_path")
	}
	id, err := bundle.ParseID(rawID)
	if err != nil {
		return spiffeid.ID{}, 0, invalidArg("%v", err)
	}
	if id.TrustDomain() != n.td {
		return spiffeid.ID{}, 0, invalidArg("SPIFFE ID %s is not in the local trust domain %s; "+
			"this node signs only for %s", id, n.td.Name(), n.td.Name())
	}
	// Neither the node's own identities nor a bare trust domain ID go to a caller.
	if err := authority.CheckMintID(id, n.endpointID); err != nil {
		return spiffeid.ID{}, 0, invalidArg("%v", err)
	}
	if !idAllowed(id, n.cfg.Authority.MintAllowedIDPrefixes) {
		return spiffeid.ID{}, 0, invalidArg("SPIFFE ID %s is outside the prefixes this node may "+
			"mint for (authority.mint_allowed_id_prefixes: %s)", id,
			strings.Join(n.cfg.Authority.MintAllowedIDPrefixes, ", "))
	}
	ttl := time.Duration(ttlSeconds) * time.Second
	switch {
	case ttlSeconds < 0:
		return spiffeid.ID{}, 0, invalidArg("TTL %ds is negative", ttlSeconds)
	case ttl == 0:
		ttl = maxTTL
	case ttl > maxTTL:
		return spiffeid.ID{}, 0, invalidArg("TTL %s is over the maximum %s; lower it or raise "+
			"the authority's maximum SVID TTL setting", ttl, maxTTL)
	}
	return id, ttl, nil
}

// idAllowed reports whether id falls under one of prefixes, matching whole path
// segments; no prefixes allow every ID.
func idAllowed(id spiffeid.ID, prefixes []string) bool {
	if len(prefixes) == 0 {
		return true
	}
	s := id.String()
	for _, p := range prefixes {
		if strings.HasSuffix(p, "/") && strings.HasPrefix(s, p) {
			return true
		}
		if s == p || strings.HasPrefix(s, p+"/") {
			return true
		}
	}
	return false
}
