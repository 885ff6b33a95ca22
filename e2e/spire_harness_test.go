package e2e

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Settings of the SPIRE Server harness.
const (
	// spireBinaryEnv names the environment variable that points at a prebuilt
	// spire-server binary. When it is unset, the harness builds one.
	spireBinaryEnv = "BUNDLEX_SPIRE_SERVER"
	// spireVersion is the release pinned in e2e/spire/go.mod. The harness rejects
	// any other binary because the tests rely on this release's behaviour.
	spireVersion = "1.13.3"
	// spireServerPackage is the main package of SPIRE Server.
	spireServerPackage = "github.com/spiffe/spire/cmd/spire-server"
	// spireStartTimeout bounds the wait for a started server to pass its health
	// check and open its bundle endpoint.
	spireStartTimeout = 2 * time.Minute
	// spireStopTimeout is how long a server has to exit after SIGTERM before it
	// is killed.
	spireStopTimeout = 15 * time.Second
	// spireCLITimeout bounds one spire-server CLI call.
	spireCLITimeout = 30 * time.Second
	// spirePollInterval is the pause between two readiness probes.
	spirePollInterval = 100 * time.Millisecond
	// defaultSPIRERefreshHint is the refresh_hint served when SPIREOptions leaves
	// it zero. SPIRE's own default is 5 minutes, and a short hint lets a peer that
	// polls this server see key changes within a test's deadline.
	defaultSPIRERefreshHint = 5 * time.Second
	// spireLogTailBytes caps how much of a server log a failed test prints.
	spireLogTailBytes = 64 << 10
)

// SPIREOptions configures one SPIRE Server started by startSPIRE.
type SPIREOptions struct {
	// TrustDomain is the server's trust domain name, such as "spire.test". Required.
	TrustDomain string
	// CATTL is SPIRE's ca_ttl, the lifetime of the X.509 CA and of the JWT
	// signing key. Zero keeps SPIRE's default of 24h.
	CATTL time.Duration
	// X509SVIDTTL is SPIRE's default_x509_svid_ttl. Zero keeps SPIRE's default
	// of 1h. SPIRE caps every X509-SVID at the expiry of the CA that signs it.
	X509SVIDTTL time.Duration
	// RefreshHint is the refresh_hint advertised by the bundle endpoint, in whole
	// seconds. Zero means defaultSPIRERefreshHint. SPIRE warns below 1 minute
	// but serves the value as configured.
	RefreshHint time.Duration
	// Federation lists static federates_with relationships of server.conf. SPIRE
	// keeps them out of `federation list`, and they override CLI relationships
	// with the same trust domain.
	Federation []SPIREFederatesWith
	// WebRootCAsPEM holds the CA certificates that SPIRE trusts for https_web
	// peers. SPIRE verifies https_web endpoints against the system roots, so the
	// harness writes these certificates to a file and points SSL_CERT_FILE at it.
	WebRootCAsPEM []byte
}

// SPIREFederatesWith is one static federates_with block of server.conf.
type SPIREFederatesWith struct {
	TrustDomain       string
	BundleEndpointURL string
	// Profile is "https_spiffe" or "https_web".
	Profile string
	// EndpointSPIFFEID is required for https_spiffe and must be empty for https_web.
	EndpointSPIFFEID string
}

// spireServer is one running SPIRE Server process with its files.
type spireServer struct {
	binary       string
	trustDomain  spiffeid.TrustDomain
	socketPath   string
	logPath      string
	endpointPort int

	cmd      *exec.Cmd
	exited   chan struct{}
	waitErr  error
	stopOnce sync.Once
}

// spireConfig is the data of spireConfigTemplate.
type spireConfig struct {
	SPIREOptions
	DataDir      string
	SocketPath   string
	ServerPort   int
	EndpointPort int
}

// spireConfigTemplate renders server.conf. Strings go through printf "%q"
// because HCL reads Go's escapes for quotes and backslashes the same way.
var spireConfigTemplate = template.Must(template.New("server.conf").Parse(`server {
    trust_domain = {{printf "%q" .TrustDomain}}
    bind_address = "127.0.0.1"
    bind_port = "{{.ServerPort}}"
    socket_path = {{printf "%q" .SocketPath}}
    data_dir = {{printf "%q" .DataDir}}
    log_level = "DEBUG"
{{- if .CATTL}}
    ca_ttl = "{{.CATTL}}"
{{- end}}
{{- if .X509SVIDTTL}}
    default_x509_svid_ttl = "{{.X509SVIDTTL}}"
{{- end}}

    federation {
        bundle_endpoint {
            address = "127.0.0.1"
            port = {{.EndpointPort}}
            refresh_hint = "{{.RefreshHint}}"
            profile "https_spiffe" {}
        }
{{- range .Federation}}
        federates_with {{printf "%q" .TrustDomain}} {
            bundle_endpoint_url = {{printf "%q" .BundleEndpointURL}}
            bundle_endpoint_profile {{printf "%q" .Profile}} {
{{- if .EndpointSPIFFEID}}
                endpoint_spiffe_id = {{printf "%q" .EndpointSPIFFEID}}
{{- end}}
            }
        }
{{- end}}
    }
}

plugins {
    DataStore "sql" {
        plugin_data {
            database_type = "sqlite3"
            connection_string = {{printf "%q" (print .DataDir "/datastore.sqlite3")}}
        }
    }
    KeyManager "disk" {
        plugin_data {
            keys_path = {{printf "%q" (print .DataDir "/keys.json")}}
        }
    }
    NodeAttestor "join_token" {
        plugin_data {}
    }
}
`))

// startSPIRE starts a SPIRE Server for opts.TrustDomain, waits until it is healthy
// and its bundle endpoint (profile https_spiffe) accepts connections, and stops it
// when the test ends. A failed test prints the server's log.
func startSPIRE(t *testing.T, opts SPIREOptions) *spireServer {
	t.Helper()
	td, err := spiffeid.TrustDomainFromString(opts.TrustDomain)
	if err != nil {
		t.Fatalf("e2e: invalid SPIRE trust domain %q: %v", opts.TrustDomain, err)
	}
	if opts.RefreshHint == 0 {
		opts.RefreshHint = defaultSPIRERefreshHint
	}
	if opts.RefreshHint < time.Second || opts.RefreshHint%time.Second != 0 {
		t.Fatalf("e2e: invalid SPIRE refresh hint %s: use whole seconds, at least 1s",
			opts.RefreshHint)
	}

	s := &spireServer{binary: spireServerBinary(t), trustDomain: td, exited: make(chan struct{})}
	dir := t.TempDir()
	s.socketPath = filepath.Join(shortTempDir(t), "api.sock")
	s.logPath = filepath.Join(dir, "spire-server.log")
	s.endpointPort = freeLoopbackPort(t)
	configPath := filepath.Join(dir, "server.conf")
	writeSPIREConfig(t, configPath, spireConfig{
		SPIREOptions: opts,
		DataDir:      filepath.Join(dir, "data"),
		SocketPath:   s.socketPath,
		ServerPort:   freeLoopbackPort(t),
		EndpointPort: s.endpointPort,
	})

	env := os.Environ()
	if len(opts.WebRootCAsPEM) > 0 {
		rootsPath := filepath.Join(dir, "web-roots.pem")
		if err := os.WriteFile(rootsPath, opts.WebRootCAsPEM, 0o600); err != nil {
			t.Fatalf("e2e: failed to write SPIRE web roots: %v", err)
		}
		env = append(env, "SSL_CERT_FILE="+rootsPath)
	}

	logFile, err := os.Create(s.logPath)
	if err != nil {
		t.Fatalf("e2e: failed to create SPIRE log file: %v", err)
	}
	defer logFile.Close() // the child keeps its own descriptor
	s.cmd = exec.Command(s.binary, "run", "-config", configPath)
	s.cmd.Dir = dir
	s.cmd.Env = env
	s.cmd.Stdout = logFile
	s.cmd.Stderr = logFile

	// Cleanups run last in, first out: the server stops before its log is printed.
	t.Cleanup(func() { s.printLogIfFailed(t) })
	started := time.Now()
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("e2e: failed to start %s: %v", s.binary, err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() { s.Stop(t) })

	s.waitReady(t)
	t.Logf("SPIRE Server for %s ready after %s (bundle endpoint %s)",
		td.Name(), time.Since(started).Round(time.Millisecond), s.EndpointURL())
	return s
}

func writeSPIREConfig(t *testing.T, path string, config spireConfig) {
	t.Helper()
	var buf bytes.Buffer
	if err := spireConfigTemplate.Execute(&buf, config); err != nil {
		t.Fatalf("e2e: failed to render SPIRE config: %v", err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatalf("e2e: failed to write SPIRE config: %v", err)
	}
}

// waitReady polls `spire-server healthcheck` and then the bundle endpoint port.
// SPIRE runs the server API and the bundle endpoint as separate tasks, so a
// healthy server API alone does not mean that the bundle endpoint listens yet.
func (s *spireServer) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(spireStartTimeout)
	var lastErr error
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			t.Fatalf("e2e: SPIRE Server for %s exited during startup (%v); its log is below",
				s.trustDomain.Name(), s.waitErr)
		default:
		}
		_, lastErr = s.RunCLI("healthcheck")
		if lastErr == nil {
			var conn net.Conn
			conn, lastErr = net.DialTimeout("tcp", s.endpointAddress(), time.Second)
			if lastErr == nil {
				conn.Close()
				return
			}
		}
		time.Sleep(spirePollInterval)
	}
	t.Fatalf("e2e: SPIRE Server for %s not ready after %s: %v", s.trustDomain.Name(),
		spireStartTimeout, lastErr)
}

// Stop sends SIGTERM, kills the server if it has not exited after
// spireStopTimeout and waits for the process to end. Calling it again does nothing.
func (s *spireServer) Stop(t *testing.T) {
	t.Helper()
	s.stopOnce.Do(func() {
		select {
		case <-s.exited:
			return
		default:
		}
		if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Logf("e2e: send SIGTERM to SPIRE Server pid %d: %v", s.cmd.Process.Pid, err)
		}
		select {
		case <-s.exited:
		case <-time.After(spireStopTimeout):
			t.Logf("e2e: SPIRE Server pid %d still running %s after SIGTERM; killing it",
				s.cmd.Process.Pid, spireStopTimeout)
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
	})
}

func (s *spireServer) printLogIfFailed(t *testing.T) {
	if !t.Failed() {
		return
	}
	data, err := os.ReadFile(s.logPath)
	if err != nil {
		t.Logf("e2e: failed to read SPIRE log %s: %v", s.logPath, err)
		return
	}
	if len(data) > spireLogTailBytes {
		data = data[len(data)-spireLogTailBytes:]
	}
	t.Logf("SPIRE Server log for %s (%s, last %d bytes at most):\n%s",
		s.trustDomain.Name(), s.logPath, spireLogTailBytes, data)
}

// Log returns the server's log as written so far.
func (s *spireServer) Log(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(s.logPath)
	if err != nil {
		t.Fatalf("e2e: failed to read SPIRE log %s: %v", s.logPath, err)
	}
	return string(data)
}

// TrustDomain returns the server's trust domain.
func (s *spireServer) TrustDomain() spiffeid.TrustDomain { return s.trustDomain }

// EndpointURL returns the bundle endpoint URL. SPIRE serves the bundle on path
// "/" only.
func (s *spireServer) EndpointURL() string { return "https://" + s.endpointAddress() }

// EndpointID returns the SPIFFE ID of the X509-SVID that the bundle endpoint
// presents: SPIRE uses its own server SVID, spiffe://<trust domain>/spire/server.
func (s *spireServer) EndpointID() spiffeid.ID {
	id, err := spiffeid.FromSegments(s.trustDomain, "spire", "server")
	if err != nil {
		panic(fmt.Sprintf("e2e: SPIRE endpoint ID for %s: %v", s.trustDomain.Name(), err))
	}
	return id
}

func (s *spireServer) endpointAddress() string {
	return net.JoinHostPort("127.0.0.1", fmt.Sprint(s.endpointPort))
}

// freeLoopbackPort returns a TCP port that was free on 127.0.0.1 a moment ago.
// NOTE: another process may take the port before SPIRE binds it. SPIRE then
// exits during startup and the test fails with SPIRE's log.
func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("e2e: failed to find a free loopback port: %v", err)
	}
	defer listener.Close()
	return listener.Addr().(*net.TCPAddr).Port
}

// shortTempDir returns a directory with a short path for the server API socket,
// because a Unix socket path is limited to 108 bytes on Linux and t.TempDir
// includes the test name.
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "spire")
	if err != nil {
		t.Fatalf("e2e: failed to create socket directory: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
