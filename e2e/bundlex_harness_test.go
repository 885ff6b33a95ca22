package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bundlex/bundlex/internal/admin"
)

var (
	bundlexBuild    sync.Once
	bundlexBinPath  string
	bundlexBuildErr error
)

// bundlexBinary builds cmd/bundlex once per test process.
func bundlexBinary(t *testing.T) string {
	t.Helper()
	bundlexBuild.Do(func() {
		// The binary lives next to the SPIRE build cache, outside any test's
		// temporary directory, because several tests share it.
		_, file, _, _ := runtime.Caller(0)
		dir := filepath.Join(filepath.Dir(file), "spire", "bin")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			bundlexBuildErr = err
			return
		}
		bundlexBinPath = filepath.Join(dir, "bundlex")
		root := filepath.Dir(filepath.Dir(file))
		cmd := exec.Command("go", "build", "-o", bundlexBinPath, "./cmd/bundlex")
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			bundlexBuildErr = fmt.Errorf("go build ./cmd/bundlex: %v\n%s", err, out)
		}
	})
	require.NoError(t, bundlexBuildErr)
	return bundlexBinPath
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// bxNode is one bundlex server process.
type bxNode struct {
	t            *testing.T
	name         string
	trustDomain  string
	dir          string
	configPath   string
	socket       string
	endpointAddr string
	healthAddr   string
	logPath      string
	cmd          *exec.Cmd
	exited       chan struct{}
}

// nodeOptions are the settings a test varies. extraYAML is appended verbatim
// after the federation section. It can add federation keys, indented by two
// spaces, or new top-level sections.
type nodeOptions struct {
	trustDomain string
	refreshHint time.Duration
	extraYAML   string
	// profile sets bundle_endpoint.profile; empty keeps the default, https_spiffe.
	// certFile and keyFile are the https_web certificate and key files.
	profile  string
	certFile string
	keyFile  string
}

// endpointYAML returns the bundle_endpoint keys for the profile options.
func (o nodeOptions) endpointYAML() string {
	var b strings.Builder
	if o.profile != "" {
		fmt.Fprintf(&b, "  profile: %s\n", o.profile)
	}
	if o.certFile != "" {
		fmt.Fprintf(&b, "  cert_file: %s\n", o.certFile)
		// Tests replace certificate files and wait for the node to serve them.
		b.WriteString("  cert_reload_interval: 1s\n")
	}
	if o.keyFile != "" {
		fmt.Fprintf(&b, "  key_file: %s\n", o.keyFile)
	}
	return b.String()
}

// startNode writes a configuration for a single-node cluster and starts it.
func startNode(t *testing.T, opts nodeOptions) *bxNode {
	t.Helper()
	// Unix socket paths are limited to 108 bytes, and t.TempDir() paths carry the
	// test name, so the node's directory is a short one under the system temp dir.
	dir, err := os.MkdirTemp("", "bx")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	n := &bxNode{
		t:            t,
		name:         strings.ReplaceAll(opts.trustDomain, ".", "-"),
		trustDomain:  opts.trustDomain,
		dir:          dir,
		configPath:   filepath.Join(dir, "bundlex.yaml"),
		socket:       filepath.Join(dir, "data", "admin.sock"),
		endpointAddr: freeAddr(t),
		healthAddr:   freeAddr(t),
		logPath:      filepath.Join(dir, "node.log"),
	}
	hint := opts.refreshHint
	if hint == 0 {
		hint = 5 * time.Minute
	}
	cfg := fmt.Sprintf(`trust_domain: %s
node_name: %s
data_dir: %s
log_level: debug
bundle_endpoint:
  address: %s
  refresh_hint: %s
%shealth:
  address: %s
cluster:
  raft_address: %s
  gossip_address: %s
federation:
  min_refresh: 1s
%s`, opts.trustDomain, n.name, filepath.Join(dir, "data"), n.endpointAddr, hint,
		opts.endpointYAML(), n.healthAddr, freeAddr(t), freeAddr(t), opts.extraYAML)
	require.NoError(t, os.WriteFile(n.configPath, []byte(cfg), 0o600))
	n.start()
	t.Cleanup(n.stop)
	return n
}

func (n *bxNode) start() {
	n.t.Helper()
	n.launch()
	n.waitReady()
}

// launch starts the node's process without waiting for it to be ready.
func (n *bxNode) launch() {
	t := n.t
	t.Helper()
	logFile, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	require.NoError(t, err)
	n.cmd = exec.Command(bundlexBinary(t), "server", "--config", n.configPath)
	n.cmd.Stdout, n.cmd.Stderr = logFile, logFile
	require.NoError(t, n.cmd.Start())
	n.exited = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		_ = cmd.Wait()
		logFile.Close()
		close(done)
	}(n.cmd, n.exited)
}

// waitReady waits until the node reports ready: a leader is known and the local
// bundle is published.
func (n *bxNode) waitReady() {
	t := n.t
	t.Helper()
	waitFor(t, 60*time.Second, "node "+n.name+" ready", func() error {
		select {
		case <-n.exited:
			return fmt.Errorf("node exited early:\n%s", n.logs())
		default:
		}
		st, err := n.client().Status(context.Background())
		if err != nil {
			return err
		}
		if !st.Ready {
			return fmt.Errorf("not ready: %s", st.ReadyError)
		}
		return nil
	})
}

// kill9 stops the node with SIGKILL, as a crash would.
func (n *bxNode) kill9() {
	if n.cmd == nil || n.cmd.Process == nil {
		return
	}
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.exited
	n.cmd = nil
}

// stop sends SIGTERM and waits, then kills.
func (n *bxNode) stop() {
	if n.cmd == nil || n.cmd.Process == nil {
		return
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
	case <-time.After(30 * time.Second):
		n.kill9()
	}
	if n.t.Failed() {
		n.t.Logf("log of node %s:\n%s", n.name, n.logs())
	}
	n.cmd = nil
}

func (n *bxNode) restart() {
	n.start()
}

func (n *bxNode) logs() string {
	data, _ := os.ReadFile(n.logPath)
	return string(data)
}

func (n *bxNode) client() *admin.Client {
	return admin.NewClient(n.socket, 10*time.Second)
}

func (n *bxNode) endpointURL() string { return "https://" + n.endpointAddr + "/" }

// endpointID is the SPIFFE ID the node's https_spiffe endpoint presents.
func (n *bxNode) endpointID() string { return "spiffe://" + n.trustDomain + "/bundlex" }

// cli runs the bundlex CLI against this node and fails the test on error.
func (n *bxNode) cli(args ...string) string {
	n.t.Helper()
	stdout, stderr, err := n.cliResult(args...)
	require.NoError(n.t, err, "bundlex %s\nstdout: %s\nstderr: %s",
		strings.Join(args, " "), stdout, stderr)
	return stdout
}

// cliResult runs the bundlex CLI and returns its outputs and exit error.
func (n *bxNode) cliResult(args ...string) (string, string, error) {
	full := append([]string{"--socket", n.socket}, args...)
	cmd := exec.Command(bundlexBinary(n.t), full...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// writeFile writes data into the node's directory and returns the path.
func (n *bxNode) writeFile(name string, data []byte) string {
	path := filepath.Join(n.dir, name)
	require.NoError(n.t, os.WriteFile(path, data, 0o600))
	return path
}

// waitFor polls cond until it returns nil or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	delay := 20 * time.Millisecond
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s: %v", timeout, what, err)
		}
		time.Sleep(delay)
		delay = min(delay*2, 500*time.Millisecond)
	}
}
