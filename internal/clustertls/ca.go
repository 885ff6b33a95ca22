package clustertls

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"path/filepath"
	"time"
)

const (
	// CACertFileName and CAKeyFileName are the files that CreateCA writes.
	CACertFileName = "bundlex-cluster-ca.pem"
	CAKeyFileName  = "bundlex-cluster-ca-key.pem"

	// DefaultCAValidity is how long a cluster CA is valid when
	// CAOptions.Validity is zero: 1825 days (five years), the default of
	// `consul tls ca create`. Every node certificate must expire before its CA.
	DefaultCAValidity = 5 * 365 * 24 * time.Hour
	// DefaultCACommonName is the subject common name of a cluster CA.
	DefaultCACommonName = "bundlex cluster CA"

	// clockSkewAllowance backdates NotBefore so that a node whose clock runs a
	// little behind accepts a certificate issued a moment ago.
	clockSkewAllowance = time.Minute
)

// CAOptions configures CreateCA.
type CAOptions struct {
	// CommonName is the subject common name; default DefaultCACommonName.
	CommonName string
	// Validity is the lifetime from now; default DefaultCAValidity.
	Validity time.Duration
	// Overwrite replaces existing files, like `--force` on the command line.
	// Without it CreateCA fails when either file exists.
	Overwrite bool
}

// CreateCA generates an EC P-256 key and a self-signed cluster CA certificate
// and writes them to dir as CACertFileName and CAKeyFileName (mode 0600). The CA
// may sign node certificates but no intermediate CA (path length 0).
func CreateCA(dir string, opts CAOptions) (certPath, keyPath string, err error) {
	if opts.Validity < 0 {
		return "", "", fmt.Errorf("clustertls: CA validity %s is negative; give a "+
			"positive duration or 0 for the default %s", opts.Validity, DefaultCAValidity)
	}
	opts.Validity = orDefault(opts.Validity, DefaultCAValidity)
	opts.CommonName = orDefault(opts.CommonName, DefaultCACommonName)

	key, err := generateKey()
	if err != nil {
		return "", "", err
	}
	serial, err := newSerialNumber()
	if err != nil {
		return "", "", err
	}
	now := time.Now()
	template := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: opts.CommonName},
		NotBefore:             now.Add(-clockSkewAllowance),
		NotAfter:              now.Add(opts.Validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(nil, template, template, key.Public(), key)
	if err != nil {
		return "", "", fmt.Errorf("clustertls: sign the CA certificate: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return "", "", err
	}
	certPath = filepath.Join(dir, CACertFileName)
	keyPath = filepath.Join(dir, CAKeyFileName)
	err = writePEMFiles(dir, opts.Overwrite,
		pemFile{path: keyPath, content: keyPEM, mode: keyFileMode},
		pemFile{path: certPath, content: encodeCertificate(der), mode: certFileMode})
	if err != nil {
		return "", "", err
	}
	return certPath, keyPath, nil
}

func orDefault[T comparable](value, fallback T) T {
	var zero T
	if value == zero {
		return fallback
	}
	return value
}
