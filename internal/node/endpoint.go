package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/bundlex/bundlex/config"
	"github.com/bundlex/bundlex/federation"
)

// svidRetry is the pause before minting the endpoint X509-SVID again after a failure.
const svidRetry = 10 * time.Second

// certificateSource holds the endpoint's current certificate for GetCertificate.
type certificateSource struct {
	current atomic.Pointer[tls.Certificate]
}

func (c *certificateSource) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	cert := c.current.Load()
	if cert == nil {
		return nil, errors.New("node: bundle endpoint certificate is not ready yet")
	}
	return cert, nil
}

// startEndpoint picks the certificate source for the configured profile and
// authority, and starts the HTTPS bundle endpoint.
func (n *Node) startEndpoint(ctx context.Context) error {
	ep := n.cfg.BundleEndpoint
	var getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	logger := n.log.With("component", "endpoint")
	switch {
	case ep.Profile == config.ProfileHTTPSWeb:
		fc, err := federation.NewFileCertificate(ep.CertFile, ep.KeyFile,
			federation.WithCertificateLogger(logger),
			federation.WithCertificateReloadInterval(ep.CertReloadInterval))
		if err != nil {
			return fmt.Errorf("node: bundle_endpoint.cert_file: %w", err)
		}
		getCert = fc.GetCertificate
	case n.builtin != nil:
		n.cert = &certificateSource{}
		next, err := n.renewEndpointSVID()
		if err != nil {
			return err
		}
		n.goRun(func() { n.runSVIDRenewal(ctx, next) })
		getCert = n.cert.GetCertificate
	default:
		a := n.cfg.Authority
		fc, err := federation.NewFileCertificate(a.EndpointCertFile, a.EndpointKeyFile,
			federation.WithCertificateLogger(logger),
			federation.WithCertificateReloadInterval(ep.CertReloadInterval))
		if err != nil {
			return fmt.Errorf("node: authority.endpoint_cert_file: %w", err)
		}
		getCert = fc.GetCertificate
	}
	n.getCertificate = getCert
	server, err := federation.NewEndpointServer(federation.EndpointConfig{
		Name:           "bundle endpoint",
		Address:        ep.Address,
		Handler:        n.countRequests(n.gateEndpoint(n.handler)),
		GetCertificate: getCert,
		Logger:         logger,

		ReadTimeout:           ep.ReadTimeout,
		MaxConnections:        ep.MaxConnections,
		MaxConnectionsSetting: "bundle_endpoint.max_connections",
	})
	if err != nil {
		return err
	}
	if err := server.Start(); err != nil {
		return err
	}
	n.endpoint = server
	return nil
}

// renewEndpointSVID mints a new endpoint X509-SVID (SPIFFE Federation 5.2.2.3: the
// https_spiffe server certificate is an X509-SVID) and returns when to renew it:
// at half its lifetime, so that a failed renewal has time to be retried.
func (n *Node) renewEndpointSVID() (time.Time, error) {
	svid, err := n.builtin.MintX509SVID(n.endpointID, n.cfg.Authority.X509SVIDMaxTTL)
	if err != nil {
		return time.Time{}, fmt.Errorf("node: mint endpoint X509-SVID for %s: %w", n.endpointID, err)
	}
	cert := &tls.Certificate{PrivateKey: svid.PrivateKey, Leaf: svid.Certificates[0]}
	for _, c := range svid.Certificates {
		cert.Certificate = append(cert.Certificate, c.Raw)
	}
	n.cert.current.Store(cert)
	leaf := svid.Certificates[0]
	n.log.Info("endpoint X509-SVID minted", "spiffe_id", n.endpointID.String(),
		"expires", leaf.NotAfter)
	return leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore) / 2), nil
}

func (n *Node) runSVIDRenewal(ctx context.Context, next time.Time) {
	for sleep(ctx, max(time.Until(next), 0)) {
		renewAt, err := n.renewEndpointSVID()
		if err != nil {
			n.log.Error("endpoint X509-SVID renewal failed", "error", err, "retry_in", svidRetry)
			next = time.Now().Add(svidRetry)
			continue
		}
		next = renewAt
	}
}
