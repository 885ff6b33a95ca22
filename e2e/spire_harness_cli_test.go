package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Profiles of the SPIFFE bundle endpoint, spelled as the SPIRE CLI expects them.
const (
	profileHTTPSSPIFFE = "https_spiffe"
	profileHTTPSWeb    = "https_web"
)

// RunCLI runs `spire-server <command> -socketPath <socket> <flags...>` against this
// server and returns its standard output. The error includes the standard error.
func (s *spireServer) RunCLI(command string, flags ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), spireCLITimeout)
	defer cancel()
	args := append(strings.Fields(command), "-socketPath", s.socketPath)
	args = append(args, flags...)
	cmd := exec.CommandContext(ctx, s.binary, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("timed out after %s: %w", spireCLITimeout, err)
		}
		return stdout.Bytes(), fmt.Errorf("e2e: spire-server %s: %w; stderr: %s",
			strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return stdout.Bytes(), nil
}

func (s *spireServer) mustRunCLI(t *testing.T, command string, flags ...string) []byte {
	t.Helper()
	out, err := s.RunCLI(command, flags...)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return out
}

// BundleSPIFFE returns the server's own bundle as a SPIFFE bundle document
// (`bundle show -format spiffe`).
func (s *spireServer) BundleSPIFFE(t *testing.T) []byte {
	t.Helper()
	return s.mustRunCLI(t, "bundle show", "-format", "spiffe")
}

// BundlePEM returns the server's X.509 authorities as PEM certificates
// (`bundle show -format pem`).
func (s *spireServer) BundlePEM(t *testing.T) []byte {
	t.Helper()
	return s.mustRunCLI(t, "bundle show", "-format", "pem")
}

// BundleList returns the bundle that the server stores for the federated trust
// domain td, as a SPIFFE bundle document (`bundle list -id spiffe://<td>`).
func (s *spireServer) BundleList(t *testing.T, td string) []byte {
	t.Helper()
	return s.mustRunCLI(t, "bundle list", "-id", "spiffe://"+td, "-format", "spiffe")
}

// FederationCreate adds a federation relationship through the CLI. profile is
// "https_spiffe" or "https_web". endpointID is used only for https_spiffe, and
// bundlePath, when not empty, names a bootstrap bundle in SPIFFE format.
func (s *spireServer) FederationCreate(t *testing.T, td, url, profile, endpointID,
	bundlePath string) {
	t.Helper()
	flags := []string{
		"-trustDomain", td,
		"-bundleEndpointURL", url,
		"-bundleEndpointProfile", profile,
	}
	if endpointID != "" {
		flags = append(flags, "-endpointSpiffeID", endpointID)
	}
	if bundlePath != "" {
		flags = append(flags,
			"-trustDomainBundlePath", bundlePath,
			"-trustDomainBundleFormat", "spiffe")
	}
	s.mustRunCLI(t, "federation create", flags...)
}

// FederationRefresh makes the server fetch the bundle of td now. SPIRE fetches
// synchronously, so the call fails when the fetch fails.
func (s *spireServer) FederationRefresh(t *testing.T, td string) {
	t.Helper()
	s.mustRunCLI(t, "federation refresh", "-id", td)
}

// MintX509 mints an X509-SVID for id with a fresh key (`x509 mint`). A zero ttl
// keeps the server's default_x509_svid_ttl. It returns the certificate chain,
// leaf first, and the PKCS #8 private key, both PEM encoded.
func (s *spireServer) MintX509(t *testing.T, id string, ttl time.Duration) (certsPEM,
	keyPEM []byte) {
	t.Helper()
	dir := t.TempDir()
	flags := []string{"-spiffeID", id, "-write", dir}
	if ttl != 0 {
		flags = append(flags, "-ttl", ttl.String())
	}
	s.mustRunCLI(t, "x509 mint", flags...)
	return readFile(t, filepath.Join(dir, "svid.pem")), readFile(t, filepath.Join(dir, "key.pem"))
}

// MintJWT mints a JWT-SVID for id with one audience (`jwt mint`) and returns the
// compact token. Its lifetime is the server's default_jwt_svid_ttl, 5 minutes.
func (s *spireServer) MintJWT(t *testing.T, id, audience string) string {
	t.Helper()
	token := strings.TrimSpace(string(s.mustRunCLI(t, "jwt mint",
		"-spiffeID", id, "-audience", audience)))
	if token == "" {
		t.Fatalf("e2e: spire-server jwt mint for %s printed no token", id)
	}
	return token
}

// writeBundleFile writes a SPIFFE bundle document to a file for FederationCreate.
func writeBundleFile(t *testing.T, td spiffeid.TrustDomain, bundle []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), td.Name()+".bundle.json")
	if err := os.WriteFile(path, bundle, 0o600); err != nil {
		t.Fatalf("e2e: failed to write bundle of %s: %v", td.Name(), err)
	}
	return path
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("e2e: failed to read %s: %v", path, err)
	}
	return data
}
