package clustertls

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
)

const (
	// certFileMode lets other local users read a certificate, which is public.
	certFileMode fs.FileMode = 0o644
	// keyFileMode keeps a private key readable by its owner only.
	keyFileMode fs.FileMode = 0o600
	// dirMode applies only to an output directory that does not exist yet.
	dirMode fs.FileMode = 0o700
	// serialBits is the size of random certificate serial numbers, above the 64
	// bits of entropy that the CA/Browser Forum Baseline Requirements 7.1 ask for.
	serialBits = 128
)

// pemFile is one file to write: its path, PEM content and permission bits.
type pemFile struct {
	path    string
	content []byte
	mode    fs.FileMode
}

// writePEMFiles writes files in order. Without overwrite it first checks that
// none exists, so a refused call leaves the directory as it was. Each file is
// written to a temporary name and moved into place, so a process that reloads the
// files never reads half of one.
func writePEMFiles(dir string, overwrite bool, files ...pemFile) error {
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return fmt.Errorf("clustertls: create the output directory %s: %w", dir, err)
	}
	if !overwrite {
		for _, f := range files {
			if _, err := os.Lstat(f.path); err == nil {
				return fmt.Errorf("clustertls: %s already exists; remove it, choose "+
					"another directory or set Overwrite (--force) to replace it", f.path)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("clustertls: check whether %s exists: %w", f.path, err)
			}
		}
	}
	for _, f := range files {
		if err := writeFileAtomic(f, overwrite); err != nil {
			return err
		}
	}
	return nil
}

func writeFileAtomic(f pemFile, overwrite bool) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(f.path), "."+filepath.Base(f.path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("clustertls: create a temporary file for %s: %w", f.path, err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()

	// CreateTemp opens the file with mode 0600, so the key is never readable by
	// others, not even for a moment.
	if err := tmp.Chmod(f.mode); err != nil {
		return fmt.Errorf("clustertls: set mode %o on %s: %w", f.mode, tmp.Name(), err)
	}
	if _, err := tmp.Write(f.content); err != nil {
		return fmt.Errorf("clustertls: write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("clustertls: flush %s to disk: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("clustertls: close %s: %w", tmp.Name(), err)
	}

	if overwrite {
		if err := os.Rename(tmp.Name(), f.path); err != nil {
			return fmt.Errorf("clustertls: move %s to %s: %w", tmp.Name(), f.path, err)
		}
		return nil
	}
	// A hard link fails when the target exists, so a file created by someone else
	// since the check in writePEMFiles is never replaced.
	if err := os.Link(tmp.Name(), f.path); err != nil {
		return fmt.Errorf("clustertls: create %s: %w; set Overwrite (--force) to "+
			"replace an existing file", f.path, err)
	}
	return os.Remove(tmp.Name())
}

func generateKey() (*ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("clustertls: generate an EC P-256 key: %w", err)
	}
	return key, nil
}

func newSerialNumber() (*big.Int, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), serialBits))
	if err != nil {
		return nil, fmt.Errorf("clustertls: generate a certificate serial number: %w", err)
	}
	return serial, nil
}

func encodeCertificate(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// encodeKey encodes key as PKCS #8, which crypto/tls and OpenSSL both read.
func encodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("clustertls: encode the private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// loadCA reads the CA certificate and its private key and checks that they
// belong together and that the certificate may sign certificates.
func loadCA(certFile, keyFile string) (*x509.Certificate, crypto.Signer, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, nil, fmt.Errorf("clustertls: read the CA certificate: %w", err)
	}
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, nil, fmt.Errorf("clustertls: %s contains no PEM CERTIFICATE block; "+
			"give the file that CreateCA wrote", certFile)
	}
	caCert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("clustertls: parse the CA certificate in %s: %w",
			certFile, err)
	}
	if !caCert.IsCA || caCert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, nil, fmt.Errorf("clustertls: the certificate in %s is not a CA "+
			"certificate (basic constraints CA or key usage certSign missing)", certFile)
	}

	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("clustertls: read the CA key: %w", err)
	}
	key, err := parsePrivateKey(keyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("clustertls: CA key %s: %w", keyFile, err)
	}
	if !publicKeysEqual(key.Public(), caCert.PublicKey) {
		return nil, nil, fmt.Errorf("clustertls: the key in %s does not match the CA "+
			"certificate in %s; give the pair that CreateCA wrote", keyFile, certFile)
	}
	return caCert, key, nil
}

// parsePrivateKey reads the first PEM block as a PKCS #8 or SEC 1 EC key, the
// forms that CreateCA and `consul tls ca create` write.
func parsePrivateKey(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	switch block.Type {
	case "PRIVATE KEY":
		key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse the PKCS #8 private key: %w", err)
		}
		signer, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("unsupported private key type %T", key)
		}
		return signer, nil
	case "EC PRIVATE KEY":
		key, err := x509.ParseECPrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse the EC private key: %w", err)
		}
		return key, nil
	default:
		return nil, fmt.Errorf("unsupported PEM block type %q; expected PRIVATE KEY "+
			"or EC PRIVATE KEY", block.Type)
	}
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	comparable, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && comparable.Equal(b)
}
