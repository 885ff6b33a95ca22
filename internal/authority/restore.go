package authority

import (
	"crypto/ecdsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// restore rebuilds the live keys from a loaded state file and their key
// files, and checks that every key file matches its record in the state.
func (b *Builtin) restore(st *stateFile) error {
	statePath := filepath.Join(b.cfg.Dir, StateFileName)
	if st.TrustDomain != b.cfg.TrustDomain.Name() {
		return fmt.Errorf("authority: state file %s belongs to trust domain %q, not %q; set "+
			"Dir to a directory of its own for each trust domain", statePath, st.TrustDomain,
			b.cfg.TrustDomain.Name())
	}
	for _, rec := range st.CAs {
		ca, err := b.restoreCA(statePath, rec)
		if err != nil {
			return err
		}
		b.cas = append(b.cas, ca)
	}
	raised := false
	for _, rec := range st.JWTKeys {
		key, err := readKeyFile(b.cfg.Dir, jwtKeyFileName(rec.KeyID))
		if err != nil {
			return err
		}
		k := &jwtKey{rec: rec, key: key}
		// Tokens signed from now on may live JWTSVIDMaxTTL, so a retired key must
		// stay published that long even when an earlier run used a lower maximum.
		if rec.Status == statusActive && k.raiseMaxSVIDTTL(b.cfg.JWTSVIDMaxTTL) {
			raised = true
		}
		b.jwts = append(b.jwts, k)
	}
	if raised {
		return saveState(b.cfg.Dir, b.stateOf(b.cas, b.jwts))
	}
	return nil
}

func (b *Builtin) restoreCA(statePath string, rec caRecord) (*caKey, error) {
	cert, err := x509.ParseCertificate(rec.Certificate)
	if err != nil {
		return nil, corruptStateError(statePath,
			fmt.Errorf("certificate of CA %s cannot be parsed: %w", rec.Serial, err))
	}
	if fmt.Sprintf("%x", cert.SerialNumber) != rec.Serial {
		return nil, corruptStateError(statePath,
			fmt.Errorf("certificate serial %x differs from recorded serial %s",
				cert.SerialNumber, rec.Serial))
	}
	key, err := readKeyFile(b.cfg.Dir, caKeyFileName(rec.Serial))
	if err != nil {
		return nil, err
	}
	if !publicKeyMatches(cert, key) {
		path := filepath.Join(b.cfg.Dir, caKeyFileName(rec.Serial))
		return nil, fmt.Errorf("authority: private key %s does not match the certificate of "+
			"CA %s in %s; restore both files from the same backup", path, rec.Serial, statePath)
	}
	return &caKey{rec: rec, cert: cert, key: key}, nil
}

func publicKeyMatches(cert *x509.Certificate, key *ecdsa.PrivateKey) bool {
	certKey, ok := cert.PublicKey.(*ecdsa.PublicKey)
	return ok && certKey.Equal(&key.PublicKey)
}

func removeFile(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
