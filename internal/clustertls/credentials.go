package clustertls

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"
)

// credentials is one loaded and verified set of CA, certificate and key files,
// with the TLS configurations built from it. It is never modified after
// construction, so handshakes share it without locks.
type credentials struct {
	caPEM, certPEM, keyPEM []byte
	leaf                   *x509.Certificate
	server                 *tls.Config
	client                 *tls.Config
}

// credentialFiles names the three files that a StreamLayer reads.
type credentialFiles struct {
	ca, cert, key string
}

// read returns the contents of the three files.
func (f credentialFiles) read() (caPEM, certPEM, keyPEM []byte, err error) {
	if caPEM, err = os.ReadFile(f.ca); err != nil {
		return nil, nil, nil, fmt.Errorf("clustertls: read the cluster CA file: %w", err)
	}
	if certPEM, err = os.ReadFile(f.cert); err != nil {
		return nil, nil, nil, fmt.Errorf("clustertls: read the node certificate file: %w",
			err)
	}
	if keyPEM, err = os.ReadFile(f.key); err != nil {
		return nil, nil, nil, fmt.Errorf("clustertls: read the node key file: %w", err)
	}
	return caPEM, certPEM, keyPEM, nil
}

// sameContent reports whether c was built from exactly these file contents.
func (c *credentials) sameContent(caPEM, certPEM, keyPEM []byte) bool {
	return bytes.Equal(c.caPEM, caPEM) && bytes.Equal(c.certPEM, certPEM) &&
		bytes.Equal(c.keyPEM, keyPEM)
}

// buildCredentials parses the files' contents and checks, at time now, that the
// certificate matches the key, chains to a certificate in the CA file and may
// act as both a Raft server and a Raft client. A CA file may hold several CA
// certificates, so that during a CA rotation nodes trust the old and the new CA.
func buildCredentials(files credentialFiles, caPEM, certPEM, keyPEM []byte,
	now time.Time) (*credentials, error) {
	roots, err := parseCAPool(caPEM)
	if err != nil {
		return nil, fmt.Errorf("clustertls: cluster CA file %s: %w", files.ca, err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("clustertls: load the node certificate %s with key %s: %w",
			files.cert, files.key, err)
	}
	if cert.Leaf == nil {
		// X509KeyPair leaves Leaf nil when GODEBUG x509keypairleaf=0.
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("clustertls: parse the node certificate in %s: %w",
				files.cert, err)
		}
	}
	intermediates := x509.NewCertPool()
	for _, der := range cert.Certificate[1:] {
		parsed, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("clustertls: parse a chain certificate in %s: %w",
				files.cert, err)
		}
		intermediates.AddCert(parsed)
	}
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth,
		x509.ExtKeyUsageClientAuth} {
		_, err := cert.Leaf.Verify(x509.VerifyOptions{
			Roots: roots, Intermediates: intermediates, DNSName: ServerName,
			KeyUsages: []x509.ExtKeyUsage{usage}, CurrentTime: now,
		})
		if err != nil {
			return nil, fmt.Errorf("clustertls: node certificate %s is not valid for "+
				"Raft under the CA in %s: %w; create one with CreateNodeCert from that CA",
				files.cert, files.ca, err)
		}
	}
	creds := &credentials{caPEM: caPEM, certPEM: certPEM, keyPEM: keyPEM, leaf: cert.Leaf}
	creds.server = serverTLSConfig(&cert, roots)
	creds.client = clientTLSConfig(&cert, roots)
	return creds, nil
}

func parseCAPool(caPEM []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	found := false
	for rest := caPEM; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		ca, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse a CA certificate: %w", err)
		}
		pool.AddCert(ca)
		found = true
	}
	if !found {
		return nil, errors.New("no PEM CERTIFICATE block found")
	}
	return pool, nil
}

// serverTLSConfig accepts only TLS 1.3 clients that present a node certificate
// of the cluster CA. Session tickets are disabled, because a resumed session
// reuses the client certificate verified in an earlier handshake, which may no
// longer be trusted after the CA file changed.
func serverTLSConfig(cert *tls.Certificate, roots *x509.CertPool) *tls.Config {
	return &tls.Config{
		MinVersion:             tls.VersionTLS13,
		Certificates:           []tls.Certificate{*cert},
		ClientAuth:             tls.RequireAndVerifyClientCert,
		ClientCAs:              roots,
		SessionTicketsDisabled: true,
		VerifyConnection:       verifyClientName,
	}
}

// clientTLSConfig verifies the server against the cluster CA under ServerName.
// The client certificate is sent whatever CAs the server lists, so that a CA
// mismatch is reported by the server as such rather than as a missing
// certificate.
func clientTLSConfig(cert *tls.Certificate, roots *x509.CertPool) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		RootCAs:    roots,
		ServerName: ServerName,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return cert, nil
		},
	}
}

// verifyClientName requires the client's verified certificate to carry
// ServerName, so that a certificate that the cluster CA issued for another
// purpose does not admit its holder to Raft.
func verifyClientName(state tls.ConnectionState) error {
	if len(state.PeerCertificates) == 0 {
		return errors.New("clustertls: the client sent no certificate")
	}
	leaf := state.PeerCertificates[0]
	if err := leaf.VerifyHostname(ServerName); err != nil {
		return fmt.Errorf("clustertls: client certificate %q (serial %x) is not a node "+
			"certificate: %w", leaf.Subject.CommonName, leaf.SerialNumber, err)
	}
	return nil
}
