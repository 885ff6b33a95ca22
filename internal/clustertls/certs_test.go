package clustertls

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func requireMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	info, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, want, info.Mode().Perm(), "mode of %s", path)
}

func TestCreateCAWritesSelfSignedCA(t *testing.T) {
	dir := t.TempDir()
	before := time.Now()
	certFile, keyFile, err := CreateCA(dir, CAOptions{})
	require.NoError(t, err)
	require.Equal(t, filepath.Join(dir, "bundlex-cluster-ca.pem"), certFile)
	require.Equal(t, filepath.Join(dir, "bundlex-cluster-ca-key.pem"), keyFile)
	requireMode(t, keyFile, 0o600)
	requireMode(t, certFile, 0o644)

	ca := readCert(t, certFile)
	require.True(t, ca.IsCA)
	require.True(t, ca.MaxPathLenZero)
	require.Equal(t, x509.KeyUsageCertSign|x509.KeyUsageCRLSign, ca.KeyUsage)
	require.Equal(t, DefaultCACommonName, ca.Subject.CommonName)
	require.NoError(t, ca.CheckSignatureFrom(ca))
	key, ok := ca.PublicKey.(*ecdsa.PublicKey)
	require.True(t, ok, "CA key is %T", ca.PublicKey)
	require.Equal(t, elliptic.P256(), key.Curve)
	require.WithinDuration(t, before.Add(DefaultCAValidity), ca.NotAfter, time.Minute)
	require.True(t, ca.NotBefore.Before(before))

	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	require.NoError(t, err, "the key file must match the certificate")
	require.Equal(t, ca.Raw, pair.Leaf.Raw)
}

func TestCreateCAHonoursOptions(t *testing.T) {
	certFile, _, err := CreateCA(t.TempDir(), CAOptions{
		CommonName: "test cluster CA", Validity: 48 * time.Hour,
	})
	require.NoError(t, err)
	ca := readCert(t, certFile)
	require.Equal(t, "test cluster CA", ca.Subject.CommonName)
	require.WithinDuration(t, time.Now().Add(48*time.Hour), ca.NotAfter, time.Minute)

	_, _, err = CreateCA(t.TempDir(), CAOptions{Validity: -time.Hour})
	require.ErrorContains(t, err, "CA validity -1h0m0s is negative")
}

func TestCreateCARefusesToOverwrite(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, err := CreateCA(dir, CAOptions{})
	require.NoError(t, err)
	certBefore, err := os.ReadFile(certFile)
	require.NoError(t, err)
	keyBefore, err := os.ReadFile(keyFile)
	require.NoError(t, err)

	_, _, err = CreateCA(dir, CAOptions{})
	require.ErrorContains(t, err, keyFile+" already exists")
	require.ErrorContains(t, err, "Overwrite (--force)")
	certAfter, err := os.ReadFile(certFile)
	require.NoError(t, err)
	keyAfter, err := os.ReadFile(keyFile)
	require.NoError(t, err)
	require.Equal(t, certBefore, certAfter)
	require.Equal(t, keyBefore, keyAfter)

	// Only the certificate left: still refused, and the key is not recreated.
	require.NoError(t, os.Remove(keyFile))
	_, _, err = CreateCA(dir, CAOptions{})
	require.ErrorContains(t, err, certFile+" already exists")
	require.NoFileExists(t, keyFile)

	_, _, err = CreateCA(dir, CAOptions{Overwrite: true})
	require.NoError(t, err)
	certReplaced, err := os.ReadFile(certFile)
	require.NoError(t, err)
	require.NotEqual(t, certBefore, certReplaced)
	requireMode(t, keyFile, 0o600)
	leftovers, err := filepath.Glob(filepath.Join(dir, ".*tmp-*"))
	require.NoError(t, err)
	require.Empty(t, leftovers)
}

func TestCreateNodeCertChainsToCA(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	certFile, keyFile, err := CreateNodeCert(dir, NodeCertOptions{
		CACertFile: ca.certFile, CAKeyFile: ca.keyFile, NodeName: "Node-1",
		DNSNames:    []string{"raft.example.test", "SERVER.bundlex.cluster"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
	})
	require.NoError(t, err)
	require.Equal(t, filepath.Join(dir, "Node-1.pem"), certFile)
	require.Equal(t, filepath.Join(dir, "Node-1-key.pem"), keyFile)
	requireMode(t, keyFile, 0o600)
	requireMode(t, certFile, 0o644)

	cert := readCert(t, certFile)
	require.Equal(t, "Node-1", cert.Subject.CommonName)
	require.Equal(t, []string{"node-1.bundlex.cluster", "server.bundlex.cluster",
		"raft.example.test"}, cert.DNSNames)
	require.Len(t, cert.IPAddresses, 2)
	require.True(t, cert.IPAddresses[0].Equal(net.ParseIP("127.0.0.1")))
	require.True(t, cert.IPAddresses[1].Equal(net.ParseIP("::1")))
	require.False(t, cert.IsCA)
	require.Equal(t, x509.KeyUsageDigitalSignature, cert.KeyUsage)
	require.Equal(t, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth,
		x509.ExtKeyUsageClientAuth}, cert.ExtKeyUsage)
	require.WithinDuration(t, time.Now().Add(DefaultNodeCertValidity), cert.NotAfter,
		time.Minute)

	roots := nodeFiles{caFile: ca.certFile}.roots(t)
	for _, name := range []string{ServerName, NodeDNSName("Node-1"), "127.0.0.1"} {
		for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth,
			x509.ExtKeyUsageClientAuth} {
			_, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: name,
				KeyUsages: []x509.ExtKeyUsage{usage}})
			require.NoError(t, err, "verify for %s with usage %v", name, usage)
		}
	}
	_, err = cert.Verify(x509.VerifyOptions{Roots: newTestCA(t).pool(t)})
	require.ErrorAs(t, err, &x509.UnknownAuthorityError{})

	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	require.NoError(t, err, "the key file must match the certificate")
	require.Equal(t, cert.Raw, pair.Leaf.Raw)
}

func (ca testCA) pool(t *testing.T) *x509.CertPool {
	return nodeFiles{caFile: ca.certFile}.roots(t)
}

func TestCreateNodeCertValidity(t *testing.T) {
	ca := newTestCA(t)
	certFile, _, err := CreateNodeCert(t.TempDir(), NodeCertOptions{
		CACertFile: ca.certFile, CAKeyFile: ca.keyFile, NodeName: "node-1",
		Validity: 2 * time.Hour,
	})
	require.NoError(t, err)
	require.WithinDuration(t, time.Now().Add(2*time.Hour), readCert(t, certFile).NotAfter,
		time.Minute)
}

func TestCreateNodeCertRefusesToOverwrite(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	opts := NodeCertOptions{CACertFile: ca.certFile, CAKeyFile: ca.keyFile,
		NodeName: "node-1"}
	certFile, keyFile, err := CreateNodeCert(dir, opts)
	require.NoError(t, err)
	serial := fileSerial(t, certFile)

	_, _, err = CreateNodeCert(dir, opts)
	require.ErrorContains(t, err, keyFile+" already exists")
	require.Equal(t, serial, fileSerial(t, certFile))

	opts.Overwrite = true
	_, _, err = CreateNodeCert(dir, opts)
	require.NoError(t, err)
	require.NotEqual(t, serial, fileSerial(t, certFile))
	_, err = tls.LoadX509KeyPair(certFile, keyFile)
	require.NoError(t, err)
}

func TestCreateNodeCertRejectsBadInput(t *testing.T) {
	ca := newTestCA(t)
	other := newTestCA(t)
	shortCA, _, err := CreateCA(t.TempDir(), CAOptions{Validity: time.Hour})
	require.NoError(t, err)
	shortCAKey := filepath.Join(filepath.Dir(shortCA), CAKeyFileName)
	valid := func(o *NodeCertOptions) {}
	tests := []struct {
		name   string
		change func(*NodeCertOptions)
		want   string
	}{
		{"node name missing", func(o *NodeCertOptions) { o.NodeName = "" },
			"node name is missing"},
		{"node name with underscore", func(o *NodeCertOptions) { o.NodeName = "node_1" },
			`invalid node name "node_1": label "node_1" contains '_'`},
		{"node name with dot", func(o *NodeCertOptions) { o.NodeName = "node.one" },
			`invalid node name "node.one"`},
		{"node name leading hyphen", func(o *NodeCertOptions) { o.NodeName = "-node" },
			"starts or ends with a hyphen"},
		{"node name too long", func(o *NodeCertOptions) {
			o.NodeName = strings.Repeat("n", 64)
		}, "longer than 63 characters"},
		{"node name not ASCII", func(o *NodeCertOptions) { o.NodeName = "nöde" },
			`contains 'ö'`},
		{"empty DNS name", func(o *NodeCertOptions) { o.DNSNames = []string{""} },
			"DNS name is empty"},
		{"wildcard DNS name", func(o *NodeCertOptions) { o.DNSNames = []string{"*.a.test"} },
			`invalid DNS name "*.a.test"`},
		{"DNS name empty label", func(o *NodeCertOptions) { o.DNSNames = []string{"a..b"} },
			`invalid DNS name "a..b": empty label`},
		{"unspecified IP address", func(o *NodeCertOptions) {
			o.IPAddresses = []net.IP{net.IPv4zero}
		}, "invalid IP address 0.0.0.0"},
		{"truncated IP address", func(o *NodeCertOptions) {
			o.IPAddresses = []net.IP{{127, 0, 1}}
		}, "not 4 or 16 bytes long"},
		{"negative validity", func(o *NodeCertOptions) { o.Validity = -time.Second },
			"node certificate validity -1s is negative"},
		{"CA certificate missing", func(o *NodeCertOptions) { o.CACertFile = "" },
			"CA certificate file is missing"},
		{"CA key missing", func(o *NodeCertOptions) { o.CAKeyFile = "" },
			"CA key file is missing"},
		{"CA key of another CA", func(o *NodeCertOptions) { o.CAKeyFile = other.keyFile },
			"does not match the CA certificate"},
		{"node certificate as CA", func(o *NodeCertOptions) {
			o.CACertFile = ca.node(t, "node-9").certFile
		}, "is not a CA certificate"},
		{"validity beyond CA", func(o *NodeCertOptions) {
			o.CACertFile, o.CAKeyFile = shortCA, shortCAKey
		}, "would outlive the CA"},
		{"valid options pass", valid, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := NodeCertOptions{CACertFile: ca.certFile, CAKeyFile: ca.keyFile,
				NodeName: "node-1"}
			tt.change(&opts)
			dir := t.TempDir()
			_, _, err := CreateNodeCert(dir, opts)
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.want)
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			require.Empty(t, entries, "a rejected call must write no file")
		})
	}
}
