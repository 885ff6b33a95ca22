package clustertls

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	hraft "github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"
)

const testReloadInterval = 50 * time.Millisecond

func fastReload(c *StreamLayerConfig) { c.ReloadInterval = testReloadInterval }

// reissue replaces files' certificate and key with a new pair for name from ca,
// as an operator would with CreateNodeCert and Overwrite.
func (ca testCA) reissue(t *testing.T, files nodeFiles, name string) string {
	t.Helper()
	_, _, err := CreateNodeCert(filepath.Dir(files.certFile), NodeCertOptions{
		CACertFile: ca.certFile, CAKeyFile: ca.keyFile, NodeName: name, Overwrite: true,
	})
	require.NoError(t, err)
	return fileSerial(t, files.certFile)
}

func dialSerial(t *testing.T, client, server *StreamLayer) string {
	t.Helper()
	conn, err := client.Dial(hraft.ServerAddress(server.Addr().String()), waitFor)
	require.NoError(t, err)
	defer conn.Close()
	return peerSerial(t, conn)
}

func TestReloadServesNewServerCertificate(t *testing.T) {
	ca := newTestCA(t)
	serverFiles := ca.node(t, "node-1")
	server, logs := startLayer(t, serverFiles, fastReload)
	client, _ := startLayer(t, ca.node(t, "node-2"), nil)
	acceptAll(t, server)
	oldSerial := fileSerial(t, serverFiles.certFile)
	require.Equal(t, oldSerial, dialSerial(t, client, server))

	newSerial := ca.reissue(t, serverFiles, "node-1")
	require.NotEqual(t, oldSerial, newSerial)
	require.Eventually(t, func() bool {
		return dialSerial(t, client, server) == newSerial
	}, waitFor, pollEvery)
	require.Equal(t, uint64(1), server.Stats().Reloads)
	require.Contains(t, logs.String(), "msg=\"reloaded the cluster TLS certificate\"")
	require.Contains(t, logs.String(), "serial="+newSerial)
}

func TestReloadSendsNewClientCertificate(t *testing.T) {
	ca := newTestCA(t)
	server, _ := startLayer(t, ca.node(t, "node-1"), nil)
	clientFiles := ca.node(t, "node-2")
	client, _ := startLayer(t, clientFiles, fastReload)
	accepted := acceptAll(t, server)

	inboundSerial := func() string {
		conn, err := client.Dial(hraft.ServerAddress(server.Addr().String()), waitFor)
		require.NoError(t, err)
		defer conn.Close()
		select {
		case inbound := <-accepted:
			defer inbound.Close()
			return peerSerial(t, inbound)
		case <-time.After(waitFor):
			t.Fatal("Accept returned no connection")
			return ""
		}
	}
	require.Equal(t, fileSerial(t, clientFiles.certFile), inboundSerial())
	newSerial := ca.reissue(t, clientFiles, "node-2")
	require.Eventually(t, func() bool { return inboundSerial() == newSerial }, waitFor,
		pollEvery)
}

func TestReloadKeepsLastGoodCertificate(t *testing.T) {
	ca := newTestCA(t)
	other := newTestCA(t)
	foreign := other.node(t, "node-1")
	expired := ca.issue(t, "node-1", time.Now().Add(-2*DefaultNodeCertValidity))
	tests := []struct {
		name    string
		certPEM func(t *testing.T) []byte
		keyPEM  func(t *testing.T, current nodeFiles) []byte
		want    string
	}{
		{"certificate file not PEM", constant([]byte("not a certificate")), currentKey,
			"failed to find any PEM data in certificate input"},
		{"key of another certificate", fileContent(foreign.certFile), currentKey,
			"private key does not match public key"},
		{"pair from another CA", fileContent(foreign.certFile),
			replacedKey(foreign.keyFile), "certificate signed by unknown authority"},
		{"expired node certificate", fileContent(expired.certFile),
			replacedKey(expired.keyFile), "certificate has expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := ca.node(t, "node-1")
			server, logs := startLayer(t, files, func(c *StreamLayerConfig) {
				c.ReloadInterval = time.Hour
			})
			client, _ := startLayer(t, ca.node(t, "node-2"), nil)
			acceptAll(t, server)
			goodSerial := fileSerial(t, files.certFile)

			keyPEM := tt.keyPEM(t, files)
			require.NoError(t, os.WriteFile(files.certFile, tt.certPEM(t), 0o644))
			require.NoError(t, os.WriteFile(files.keyFile, keyPEM, 0o600))
			err := server.Reload()
			require.ErrorContains(t, err, tt.want)
			require.Equal(t, uint64(1), server.Stats().ReloadFailures)
			require.Zero(t, server.Stats().Reloads)
			require.Contains(t, logs.String(), "keeping the last good certificate")
			require.Equal(t, goodSerial, dialSerial(t, client, server))

			// Checking the same broken files again logs nothing new.
			lines := len(logs.String())
			require.Error(t, server.Reload())
			require.Equal(t, lines, len(logs.String()))

			newSerial := ca.reissue(t, files, "node-1")
			require.NoError(t, server.Reload())
			require.Equal(t, newSerial, dialSerial(t, client, server))
		})
	}
}

func constant(content []byte) func(*testing.T) []byte {
	return func(*testing.T) []byte { return content }
}

func fileContent(path string) func(*testing.T) []byte {
	return func(t *testing.T) []byte {
		data, err := os.ReadFile(path)
		require.NoError(t, err)
		return data
	}
}

func currentKey(t *testing.T, current nodeFiles) []byte {
	return fileContent(current.keyFile)(t)
}

func replacedKey(path string) func(*testing.T, nodeFiles) []byte {
	return func(t *testing.T, _ nodeFiles) []byte { return fileContent(path)(t) }
}

func TestReloadTrustsRotatedCA(t *testing.T) {
	oldCA := newTestCA(t)
	newCA := newTestCA(t)
	serverFiles := oldCA.node(t, "node-1")
	server, _ := startLayer(t, serverFiles, fastReload)
	client, _ := startLayer(t, newCA.node(t, "node-2"), func(c *StreamLayerConfig) {
		c.CAFile = writeCABundle(t, newCA, oldCA)
	})
	accepted := acceptAll(t, server)

	// The server trusts only the old CA, so it rejects the new CA's node.
	conn, err := client.Dial(hraft.ServerAddress(server.Addr().String()), waitFor)
	require.NoError(t, err, "the client trusts both CAs, so its handshake completes")
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(waitFor)))
	_, err = conn.Read(make([]byte, 1))
	require.ErrorContains(t, err, "unknown certificate authority")
	conn.Close()

	// Rotation step one: the server's CA file gains the new CA.
	bundle := writeCABundle(t, oldCA, newCA)
	bundlePEM, err := os.ReadFile(bundle)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(serverFiles.caFile+".new", bundlePEM, 0o644))
	require.NoError(t, os.Rename(serverFiles.caFile+".new", serverFiles.caFile))
	require.Eventually(t, func() bool { return server.Stats().Reloads == 1 }, waitFor,
		pollEvery)

	conn, err = client.Dial(hraft.ServerAddress(server.Addr().String()), waitFor)
	require.NoError(t, err)
	defer conn.Close()
	select {
	case inbound := <-accepted:
		inbound.Close()
	case <-time.After(waitFor):
		t.Fatal("the server did not accept the new CA's node after the reload")
	}
}

// writeCABundle writes the certificates of cas into one CA file, as an operator
// does while moving the cluster to a new CA.
func writeCABundle(t *testing.T, cas ...testCA) string {
	t.Helper()
	var bundle []byte
	for _, ca := range cas {
		bundle = append(bundle, fileContent(ca.certFile)(t)...)
	}
	path := filepath.Join(t.TempDir(), "ca-bundle.pem")
	require.NoError(t, os.WriteFile(path, bundle, 0o644))
	return path
}
