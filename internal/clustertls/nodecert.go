package clustertls

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"time"
)

// DefaultNodeCertValidity is how long a node certificate is valid when
// NodeCertOptions.Validity is zero: one year of 365 days.
const DefaultNodeCertValidity = 365 * 24 * time.Hour

// NodeCertOptions configures CreateNodeCert.
type NodeCertOptions struct {
	// CACertFile and CAKeyFile are the cluster CA written by CreateCA.
	CACertFile string
	CAKeyFile  string
	// NodeName is the node's Raft name, one DNS label. It becomes the subject
	// common name, the DNS name <node>.bundlex.cluster and the file names.
	NodeName string
	// DNSNames and IPAddresses are added to the certificate's subject alternative
	// names. Raft peers do not need them, because they verify ServerName.
	DNSNames    []string
	IPAddresses []net.IP
	// Validity is the lifetime from now; default DefaultNodeCertValidity. It must
	// end before the CA expires.
	Validity time.Duration
	// Overwrite replaces existing files, like `--force` on the command line.
	Overwrite bool
}

// CreateNodeCert generates an EC P-256 key and a certificate for one node, signed
// by the cluster CA, and writes them to dir as <node>.pem and <node>-key.pem
// (mode 0600). The certificate serves both ends of a Raft connection: its
// extended key usages are server and client authentication, and its DNS names are
// NodeDNSName(node), ServerName and the extra names.
func CreateNodeCert(dir string, opts NodeCertOptions) (certPath, keyPath string, err error) {
	return createNodeCert(dir, opts, time.Now())
}

// createNodeCert is CreateNodeCert with the issue time as a parameter, so that
// tests can make certificates that have already expired.
func createNodeCert(dir string, opts NodeCertOptions, now time.Time) (string, string, error) {
	if err := opts.validate(); err != nil {
		return "", "", err
	}
	opts.Validity = orDefault(opts.Validity, DefaultNodeCertValidity)
	caCert, caKey, err := loadCA(opts.CACertFile, opts.CAKeyFile)
	if err != nil {
		return "", "", err
	}

	notAfter := now.Add(opts.Validity)
	if notAfter.After(caCert.NotAfter) {
		return "", "", fmt.Errorf("clustertls: a node certificate valid until %s would "+
			"outlive the CA in %s, which expires at %s; choose a shorter validity or "+
			"create a new CA", notAfter.UTC().Format(time.RFC3339), opts.CACertFile,
			caCert.NotAfter.UTC().Format(time.RFC3339))
	}
	key, err := generateKey()
	if err != nil {
		return "", "", err
	}
	serial, err := newSerialNumber()
	if err != nil {
		return "", "", err
	}

	template := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: opts.NodeName},
		NotBefore:    now.Add(-clockSkewAllowance),
		NotAfter:     notAfter,
		// RFC 5480 3: an ECDSA key signs (the TLS handshake) and does not encipher.
		KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{
			x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth,
		},
		BasicConstraintsValid: true,
		DNSNames:              nodeDNSNames(opts.NodeName, opts.DNSNames),
		IPAddresses:           opts.IPAddresses,
	}
	der, err := x509.CreateCertificate(nil, template, caCert, key.Public(), caKey)
	if err != nil {
		return "", "", fmt.Errorf("clustertls: sign the certificate of node %s: %w",
			opts.NodeName, err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return "", "", err
	}

	certPath := filepath.Join(dir, opts.NodeName+".pem")
	keyPath := filepath.Join(dir, opts.NodeName+"-key.pem")
	err = writePEMFiles(dir, opts.Overwrite,
		pemFile{path: keyPath, content: keyPEM, mode: keyFileMode},
		pemFile{path: certPath, content: encodeCertificate(der), mode: certFileMode})
	if err != nil {
		return "", "", err
	}
	return certPath, keyPath, nil
}

func (opts NodeCertOptions) validate() error {
	if err := validateNodeName(opts.NodeName); err != nil {
		return err
	}
	switch {
	case opts.CACertFile == "":
		return errors.New("clustertls: CA certificate file is missing; give the " +
			CACertFileName + " written by CreateCA")
	case opts.CAKeyFile == "":
		return errors.New("clustertls: CA key file is missing; give the " +
			CAKeyFileName + " written by CreateCA")
	case opts.Validity < 0:
		return fmt.Errorf("clustertls: node certificate validity %s is negative; give "+
			"a positive duration or 0 for the default %s", opts.Validity,
			DefaultNodeCertValidity)
	}
	for _, name := range opts.DNSNames {
		if err := validateDNSName(name); err != nil {
			return err
		}
	}
	for _, ip := range opts.IPAddresses {
		if err := validateIP(ip); err != nil {
			return err
		}
	}
	return nil
}

// nodeDNSNames lists the node's own name, ServerName and then the extra names,
// each once in lower case.
func nodeDNSNames(node string, extra []string) []string {
	names := []string{NodeDNSName(node), ServerName}
	seen := map[string]bool{names[0]: true, names[1]: true}
	for _, name := range extra {
		name = strings.ToLower(name)
		if !seen[name] {
			seen[name] = true
			names = append(names, name)
		}
	}
	return names
}
