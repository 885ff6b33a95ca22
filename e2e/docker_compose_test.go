package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/stretchr/testify/require"

	"github.com/bundlex/bundlex/internal/admin"
)

// Settings of the Docker Compose test, which runs the repository's
// docker-compose.yml with the commands that docs/docker.md gives.
const (
	// composeFile is the compose file under test, at the repository root.
	composeFile = "docker-compose.yml"
	// composeTrustDomain is the trust domain the test gives the cluster through
	// BUNDLEX_TRUST_DOMAIN.
	composeTrustDomain = "compose.test"
	// composeCommandTimeout limits one compose command. `up` creates a
	// network, four volumes and seven containers, and waits for the one-shot
	// certificate services.
	composeCommandTimeout = 5 * time.Minute
	// composeClusterTimeout bounds each wait for the cluster: an election, a
	// replicated write, a restarted node catching up, or the image's
	// HEALTHCHECK, which runs every 10s, turning a container healthy.
	composeClusterTimeout = 3 * time.Minute
	// composeUpAttempts bounds the attempts of `up` when another process took
	// the subnet or a host port the test chose between choosing and `up`.
	composeUpAttempts = 5
	// composeProjectLabel is the label Compose puts on every container, network
	// and volume of a project, v1 and v2 alike.
	composeProjectLabel = "com.docker.compose.project"
)

// composeNodes are the node services of docker-compose.yml.
var composeNodes = []string{"node-1", "node-2", "node-3"}

var (
	composeCheck    sync.Once
	composeCommand  []string
	composeCheckErr error
)

// requireCompose returns the Compose command: the `docker compose` plugin (v2)
// when the docker CLI has it, else `docker-compose` (v1). It skips the test
// when neither runs, and fails it instead when CI=true, as requireDocker does.
func requireCompose(t *testing.T) []string {
	t.Helper()
	requireDocker(t)
	composeCheck.Do(func() {
		var errs []error
		for _, command := range [][]string{{"docker", "compose"}, {"docker-compose"}} {
			ctx, cancel := context.WithTimeout(context.Background(), dockerCommandTimeout)
			args := append(slices.Clone(command[1:]), "version")
			out, err := exec.CommandContext(ctx, command[0], args...).CombinedOutput()
			cancel()
			if err == nil {
				composeCommand = command
				t.Logf("compose command %q: %s", strings.Join(command, " "),
					strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0]))
				return
			}
			errs = append(errs, fmt.Errorf("%s version: %w: %s", strings.Join(command, " "),
				err, bytes.TrimSpace(out)))
		}
		composeCheckErr = errors.Join(errs...)
	})
	if composeCheckErr == nil {
		return composeCommand
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("neither Docker Compose v2 nor v1 runs, and CI=true does not allow "+
			"skipping the compose test: %v", composeCheckErr)
	}
	t.Skipf("skipping compose test: neither `docker compose` nor `docker-compose` runs "+
		"(%v); install Docker Compose to run it", composeCheckErr)
	return nil
}

// composeProject is one run of docker-compose.yml under a unique project name,
// so that its containers, network and volumes cannot clash with another
// test's or with a cluster that a user started from the same file.
type composeProject struct {
	t       *testing.T
	command []string
	root    string
	name    string
	// vars are the variables that docker-compose.yml reads. They replace any
	// BUNDLEX_ or COMPOSE_ variable of the test's own environment.
	vars map[string]string
	// endpointPorts and healthPorts map a node service to its published host
	// ports on 127.0.0.1.
	endpointPorts map[string]int
	healthPorts   map[string]int
	// containers maps a node service to its container ID.
	containers map[string]string
	// mounted contains the names of the volumes that the project's containers
	// mounted at any time, so that cleanup finds anonymous volumes too.
	mounted map[string]bool
}

// newComposeProject prepares a project that runs image and removes everything
// it created at cleanup, whether the test passed or not.
func newComposeProject(t *testing.T, command []string, image string) *composeProject {
	t.Helper()
	gossipKey := make([]byte, 32)
	_, _ = rand.Read(gossipKey)
	p := &composeProject{
		t: t, command: command, root: repoRoot(t),
		name: "bundlex-e2e-compose-" + strings.ToLower(rand.Text()[:8]),
		vars: map[string]string{
			"BUNDLEX_IMAGE":              image,
			"BUNDLEX_TRUST_DOMAIN":       composeTrustDomain,
			"BUNDLEX_CLUSTER_GOSSIP_KEY": base64.StdEncoding.EncodeToString(gossipKey),
		},
		endpointPorts: map[string]int{},
		healthPorts:   map[string]int{},
		containers:    map[string]string{},
		mounted:       map[string]bool{},
	}
	t.Cleanup(p.cleanup)
	return p
}

// run runs one compose command of the project from the repository root, as a
// user runs it there, with -p and -f given explicitly.
func (p *composeProject) run(stdin io.Reader, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), composeCommandTimeout)
	defer cancel()
	full := append(slices.Clone(p.command[1:]), "--project-name", p.name,
		"--file", filepath.Join(p.root, composeFile))
	full = append(full, args...)
	cmd := exec.CommandContext(ctx, p.command[0], full...)
	cmd.Dir = p.root
	cmd.Env = p.environ()
	cmd.Stdin = stdin
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	described := strings.Join(append(slices.Clone(p.command), args...), " ")
	if ctx.Err() != nil {
		err = fmt.Errorf("%s: timed out after %s: %w", described, composeCommandTimeout,
			ctx.Err())
	} else if err != nil {
		err = fmt.Errorf("%s: %w: %s", described, err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), err
}

// mustRun runs a compose command and fails the test when it fails.
func (p *composeProject) mustRun(args ...string) string {
	p.t.Helper()
	out, err := p.run(nil, args...)
	require.NoError(p.t, err)
	return out
}

// environ returns the test's environment without its BUNDLEX_ and COMPOSE_
// variables, plus the project's variables.
func (p *composeProject) environ() []string {
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "BUNDLEX_") || strings.HasPrefix(kv, "COMPOSE_")
	})
	for _, key := range slices.Sorted(maps.Keys(p.vars)) {
		env = append(env, key+"="+p.vars[key])
	}
	return env
}

// up chooses a free subnet and free host ports, runs `up -d` and records the
// node containers. It tries again with new choices when another process took
// one of them in between.
func (p *composeProject) up() {
	p.t.Helper()
	var err error
	for attempt := 1; attempt <= composeUpAttempts; attempt++ {
		p.chooseAddresses()
		if _, err = p.run(nil, "up", "-d"); err == nil {
			break
		}
		if !addressTaken(err) {
			require.NoError(p.t, err)
		}
		p.t.Logf("up attempt %d of %d: an address was taken, choosing others: %v",
			attempt, composeUpAttempts, err)
		_, downErr := p.run(nil, "down", "--volumes", "--remove-orphans")
		require.NoError(p.t, downErr)
	}
	require.NoError(p.t, err)
	p.findContainers()
}

// upAgain runs `up -d` with extra flags and the same variables as the first
// `up`, because the Raft configuration in the volumes holds the nodes'
// addresses.
func (p *composeProject) upAgain(flags ...string) {
	p.t.Helper()
	p.mustRun(append([]string{"up", "-d"}, flags...)...)
	p.findContainers()
}

// findContainers records the container ID of each node service.
func (p *composeProject) findContainers() {
	p.t.Helper()
	for _, service := range composeNodes {
		id := strings.TrimSpace(p.mustRun("ps", "-q", service))
		require.NotEmpty(p.t, id, "compose ps found no container for %s", service)
		p.containers[service] = id
	}
	require.NoError(p.t, p.recordMounts())
}

// addressTaken reports whether `up` failed because the subnet or a host port
// was in use, the races that choosing them in advance cannot exclude.
func addressTaken(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "overlaps") || strings.Contains(msg, "already allocated") ||
		strings.Contains(msg, "address already in use")
}

// chooseAddresses sets BUNDLEX_NETWORK_PREFIX to a /24 inside a subnet that
// Docker considers free, and the six published ports to ports that were free
// on 127.0.0.1.
func (p *composeProject) chooseAddresses() {
	p.t.Helper()
	subnet, err := freeDockerSubnet(p.name + "-probe")
	require.NoError(p.t, err)
	require.LessOrEqual(p.t, subnet.Bits(), 24,
		"Docker offered %s, smaller than the /24 that docker-compose.yml needs", subnet)
	octets := subnet.Addr().As4()
	p.vars["BUNDLEX_NETWORK_PREFIX"] = fmt.Sprintf("%d.%d.%d", octets[0], octets[1],
		octets[2])

	used := map[int]bool{}
	for i, service := range composeNodes {
		for _, ports := range []map[string]int{p.endpointPorts, p.healthPorts} {
			port := freeLoopbackPort(p.t)
			for used[port] {
				port = freeLoopbackPort(p.t)
			}
			used[port] = true
			ports[service] = port
		}
		p.vars[fmt.Sprintf("BUNDLEX_NODE_%d_ENDPOINT_PORT", i+1)] =
			strconv.Itoa(p.endpointPorts[service])
		p.vars[fmt.Sprintf("BUNDLEX_NODE_%d_HEALTH_PORT", i+1)] =
			strconv.Itoa(p.healthPorts[service])
	}
}

// resources lists the IDs of the project's containers and networks and the
// names of its volumes. It finds them by Compose's project label, by the
// project name at the start of every name Compose gives, and, for volumes, in
// p.mounted. Only p.mounted finds anonymous volumes, which have neither.
func (p *composeProject) resources() (map[string][]string, error) {
	listings := map[string][]string{
		"container": {"ps", "--all", "--quiet"},
		"network":   {"network", "ls", "--quiet"},
		"volume":    {"volume", "ls", "--quiet"},
	}
	found := map[string][]string{}
	var errs []error
	add := func(kind, id string) {
		if !slices.Contains(found[kind], id) {
			found[kind] = append(found[kind], id)
		}
	}
	for kind, args := range listings {
		for _, filter := range []string{"label=" + composeProjectLabel + "=" + p.name,
			"name=" + p.name} {
			out, _, err := runDocker(dockerCommandTimeout, nil,
				append(slices.Clone(args), "--filter", filter)...)
			errs = append(errs, err)
			for _, id := range strings.Fields(out) {
				add(kind, id)
			}
		}
	}
	out, _, err := runDocker(dockerCommandTimeout, nil, "volume", "ls", "--quiet")
	errs = append(errs, err)
	for _, name := range strings.Fields(out) {
		if p.mounted[name] {
			add("volume", name)
		}
	}
	return found, errors.Join(errs...)
}

// recordMounts adds the volumes that the project's containers mount to
// p.mounted.
func (p *composeProject) recordMounts() error {
	out, _, err := runDocker(dockerCommandTimeout, nil, "ps", "--all", "--quiet",
		"--filter", "label="+composeProjectLabel+"="+p.name)
	if err != nil || strings.TrimSpace(out) == "" {
		return err
	}
	args := append([]string{"inspect", "--format",
		`{{range .Mounts}}{{if eq .Type "volume"}}{{.Name}} {{end}}{{end}}`},
		strings.Fields(out)...)
	out, _, err = runDocker(dockerCommandTimeout, nil, args...)
	for _, name := range strings.Fields(out) {
		p.mounted[name] = true
	}
	return err
}

// cleanup prints the project's logs when the test failed, runs `down
// --volumes` and checks that no container, network or volume of the project
// is left. It removes any leftover, so that a failed run leaves nothing.
func (p *composeProject) cleanup() {
	if p.t.Failed() {
		logs, err := p.run(nil, "logs", "--no-color", "--timestamps")
		p.t.Logf("logs of compose project %s (error %v):\n%s", p.name, err, logs)
	}
	if err := p.recordMounts(); err != nil {
		p.t.Errorf("list the volumes of compose project %s: %v", p.name, err)
	}
	if _, err := p.run(nil, "down", "--volumes", "--remove-orphans"); err != nil {
		p.t.Errorf("compose down of project %s: %v", p.name, err)
	}
	left, err := p.resources()
	if err != nil {
		p.t.Errorf("list what compose project %s left: %v", p.name, err)
	}
	removals := map[string][]string{
		"container": {"rm", "--force", "--volumes"},
		"network":   {"network", "rm"},
		"volume":    {"volume", "rm", "--force"},
	}
	for _, kind := range slices.Sorted(maps.Keys(left)) {
		ids := left[kind]
		if len(ids) == 0 {
			continue
		}
		p.t.Errorf("compose down --volumes left %d %s(s) of project %s: %v", len(ids), kind,
			p.name, ids)
		_, _, err := runDocker(dockerCommandTimeout, nil,
			append(slices.Clone(removals[kind]), ids...)...)
		if err != nil {
			p.t.Errorf("remove leftover %ss of project %s: %v", kind, p.name, err)
		}
	}
}

// exec runs the bundlex CLI inside a node's container, as `docker exec` does
// for a user. stdin, when not nil, becomes the command's standard input.
func (p *composeProject) exec(service string, stdin io.Reader, args ...string) (string,
	error) {
	full := []string{"exec"}
	if stdin != nil {
		full = append(full, "--interactive")
	}
	full = append(full, p.containers[service], "/bundlex")
	stdout, _, err := runDocker(dockerCommandTimeout, stdin, append(full, args...)...)
	if err != nil {
		return stdout, fmt.Errorf("%s: %w", service, err)
	}
	return stdout, nil
}

// raftStatus returns a node's view of the Raft cluster from `cluster raft`.
func (p *composeProject) raftStatus(service string) (admin.RaftStatus, error) {
	var st admin.RaftStatus
	out, err := p.exec(service, nil, "cluster", "raft", "--output", "json")
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		return st, fmt.Errorf("%s: cluster raft printed invalid JSON: %w: %s", service, err,
			out)
	}
	return st, nil
}

// waitForLeader waits until every service in running reports the same leader,
// one of running that reports itself as leader, and until each of them lists
// all three nodes as voters. It returns the leader's service name.
func (p *composeProject) waitForLeader(running []string) string {
	p.t.Helper()
	var leader string
	waitFor(p.t, composeClusterTimeout, fmt.Sprintf("%v to agree on a leader among "+
		"them with three voters", running), func() error {
		leaders := map[string]bool{}
		states := map[string]string{}
		for _, service := range running {
			st, err := p.raftStatus(service)
			if err != nil {
				return err
			}
			leaders[st.LeaderID] = true
			states[service] = st.State
			var voters []string
			for _, server := range st.Servers {
				if server.Suffrage == "voter" {
					voters = append(voters, server.ID)
				}
			}
			slices.Sort(voters)
			if !slices.Equal(voters, composeNodes) {
				return fmt.Errorf("%s lists voters %v", service, voters)
			}
			leader = st.LeaderID
		}
		if len(leaders) != 1 || !slices.Contains(running, leader) {
			return fmt.Errorf("leaders reported: %v", slices.Collect(maps.Keys(leaders)))
		}
		if states[leader] != "Leader" {
			return fmt.Errorf("%s is named leader but is in state %s", leader,
				states[leader])
		}
		return nil
	})
	return leader
}

// waitCaughtUp waits until service has applied every entry that leader had
// committed when the wait began.
func (p *composeProject) waitCaughtUp(service, leader string) {
	p.t.Helper()
	st, err := p.raftStatus(leader)
	require.NoError(p.t, err)
	target := st.CommitIndex
	waitFor(p.t, composeClusterTimeout, fmt.Sprintf("%s to apply index %d", service,
		target), func() error {
		own, err := p.raftStatus(service)
		if err != nil {
			return err
		}
		if own.LeaderID != leader || own.AppliedIndex < target {
			return fmt.Errorf("leader %q, applied index %d", own.LeaderID, own.AppliedIndex)
		}
		return nil
	})
}

// waitHealthy waits until Docker reports the image's HEALTHCHECK as healthy
// for each service, as `docker compose ps` shows it to a user.
func (p *composeProject) waitHealthy(services ...string) {
	p.t.Helper()
	for _, service := range services {
		waitFor(p.t, composeClusterTimeout, service+" to be healthy", func() error {
			out, _, err := runDocker(dockerCommandTimeout, nil, "inspect", "--format",
				"{{.State.Status}} {{.State.Health.Status}}", p.containers[service])
			if err != nil {
				return err
			}
			if state := strings.TrimSpace(out); state != "running healthy" {
				return fmt.Errorf("container state and health: %s", state)
			}
			return nil
		})
	}
}

// containerState returns the Docker state of a service's container, such as
// running or exited.
func (p *composeProject) containerState(service string) string {
	p.t.Helper()
	return mustDocker(p.t, "inspect", "--format", "{{.State.Status}}", p.containers[service])
}

// readContainerFile returns the contents of a regular file in a service's
// container, read with `docker cp`, which needs no shell in the image.
func (p *composeProject) readContainerFile(service, path string) []byte {
	p.t.Helper()
	out, _, err := runDocker(dockerCommandTimeout, nil, "cp",
		p.containers[service]+":"+path, "-")
	require.NoError(p.t, err)
	archive := tar.NewReader(strings.NewReader(out))
	hdr, err := archive.Next()
	require.NoError(p.t, err, "docker cp of %s from %s returned no tar entry", path,
		service)
	require.Equal(p.t, byte(tar.TypeReg), hdr.Typeflag, "%s in %s is not a regular file",
		path, service)
	data, err := io.ReadAll(archive)
	require.NoError(p.t, err)
	return data
}

// nodeCertSerial returns the serial number, in hexadecimal, of the cluster TLS
// certificate that the certificate service wrote for service.
func (p *composeProject) nodeCertSerial(service string) string {
	p.t.Helper()
	data := p.readContainerFile(service, "/etc/bundlex/tls/"+service+".pem")
	block, _ := pem.Decode(data)
	require.NotNil(p.t, block, "%s's cluster certificate is not PEM", service)
	cert, err := x509.ParseCertificate(block.Bytes)
	require.NoError(p.t, err)
	return cert.SerialNumber.Text(16)
}

// waitForTLSReload waits until a node's JSON log records that it loaded the
// cluster certificate with serial number serial while running.
func (p *composeProject) waitForTLSReload(service, serial string) {
	p.t.Helper()
	waitFor(p.t, composeClusterTimeout, fmt.Sprintf("%s to load the cluster certificate "+
		"with serial %s", service, serial), func() error {
		stdout, stderr, err := runDocker(dockerCommandTimeout, nil, "logs",
			p.containers[service])
		if err != nil {
			return err
		}
		for line := range strings.Lines(stdout + stderr) {
			var record struct {
				Msg    string `json:"msg"`
				Serial string `json:"serial"`
			}
			if json.Unmarshal([]byte(line), &record) == nil &&
				record.Msg == "reloaded the cluster TLS certificate" &&
				record.Serial == serial {
				return nil
			}
		}
		return fmt.Errorf("no reload of serial %s logged yet", serial)
	})
}

// localBundle returns the local trust domain's bundle as `bundle show` prints
// it on service.
func (p *composeProject) localBundle(service string) (*spiffebundle.Bundle, error) {
	out, err := p.exec(service, nil, "bundle", "show")
	if err != nil {
		return nil, err
	}
	return spiffebundle.Parse(spiffeid.RequireTrustDomainFromString(composeTrustDomain),
		[]byte(out))
}

// waitServing waits until the published bundle endpoint of every service
// serves the leader's local bundle with one X.509 authority per node, and the
// published health port reports the node ready. SPIFFE Federation 5.2.2.4:
// the endpoint must present an X509-SVID for the endpoint SPIFFE ID that
// verifies against the bundle, so a node whose keys are missing from it
// fails the TLS handshake.
func (p *composeProject) waitServing(leader string, services []string) {
	p.t.Helper()
	for _, service := range services {
		waitFor(p.t, composeClusterTimeout, service+" to serve the cluster's bundle",
			func() error {
				want, err := p.localBundle(leader)
				if err != nil {
					return err
				}
				if n := len(want.X509Authorities()); n != len(composeNodes) {
					return fmt.Errorf("the leader's bundle has %d X.509 authorities, "+
						"want one per node", n)
				}
				url := fmt.Sprintf("https://127.0.0.1:%d/", p.endpointPorts[service])
				served, err := fetchBundleFrom(url, want)
				if err != nil {
					return err
				}
				if !served.Equal(want) {
					return fmt.Errorf("%s serves a bundle other than the leader's", url)
				}
				return checkReady(p.healthPorts[service])
			})
	}
}

// fetchBundleFrom fetches the bundle of composeTrustDomain from an
// https_spiffe endpoint that trusted authenticates.
func fetchBundleFrom(url string, trusted *spiffebundle.Bundle) (*spiffebundle.Bundle,
	error) {
	endpointID := spiffeid.RequireFromString("spiffe://" + composeTrustDomain + "/bundlex")
	client := &http.Client{
		// The Transport sets no Proxy, so the request goes to the published port
		// even when the environment names a proxy.
		Transport: &http.Transport{
			TLSClientConfig: tlsconfig.TLSClientConfig(trusted,
				tlsconfig.AuthorizeID(endpointID)),
		},
		Timeout: 30 * time.Second,
	}
	defer client.CloseIdleConnections()
	resp, err := client.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: read body: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %d: %s", url, resp.StatusCode, body)
	}
	mediaType, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || mediaType != "application/json" {
		return nil, fmt.Errorf("GET %s: Content-Type %q, want application/json", url,
			resp.Header.Get("Content-Type"))
	}
	return spiffebundle.Parse(trusted.TrustDomain(), body)
}

// checkReady returns nil when the health server on a published port of
// 127.0.0.1 reports the node ready on /readyz.
func checkReady(port int) error {
	client := &http.Client{Transport: &http.Transport{}, Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()
	url := fmt.Sprintf("http://127.0.0.1:%d/readyz", port)
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %d: %s", url, resp.StatusCode, body)
	}
	return nil
}

// setPeerBundle overrides the bundle of trust domain td through service with
// `bundle set`, reading the PEM CA certificate from standard input.
func (p *composeProject) setPeerBundle(service, td string, caPEM []byte) {
	p.t.Helper()
	_, err := p.exec(service, bytes.NewReader(caPEM), "bundle", "set", "--id", td,
		"--format", "pem", "--path", "-")
	require.NoError(p.t, err)
}

// waitForPeerBundle waits until service stores a bundle for td whose only
// X.509 authority is the certificate in caPEM.
func (p *composeProject) waitForPeerBundle(service, td string, caPEM []byte) {
	p.t.Helper()
	block, _ := pem.Decode(caPEM)
	require.NotNil(p.t, block, "the test CA is not PEM")
	waitFor(p.t, composeClusterTimeout, fmt.Sprintf("%s to store the bundle of %s",
		service, td), func() error {
		out, err := p.exec(service, nil, "bundle", "list", "--id", td, "--output", "json")
		if err != nil {
			return err
		}
		var stored admin.Bundle
		if err := json.Unmarshal([]byte(out), &stored); err != nil {
			return fmt.Errorf("bundle list printed invalid JSON: %w: %s", err, out)
		}
		bundle, err := spiffebundle.Parse(spiffeid.RequireTrustDomainFromString(td),
			stored.Document)
		if err != nil {
			return err
		}
		authorities := bundle.X509Authorities()
		if len(authorities) != 1 || !bytes.Equal(authorities[0].Raw, block.Bytes) {
			return fmt.Errorf("stored bundle has %d X.509 authorities, not the test CA",
				len(authorities))
		}
		if stored.Source != "operator" {
			return fmt.Errorf("stored bundle comes from %q, want operator", stored.Source)
		}
		return nil
	})
}

// sameAuthorities reports whether two bundles hold the same X.509 authorities
// and JWT key IDs, whatever their sequence numbers.
func sameAuthorities(a, b *spiffebundle.Bundle) bool {
	raw := func(bundle *spiffebundle.Bundle) []string {
		var certs []string
		for _, cert := range bundle.X509Authorities() {
			certs = append(certs, string(cert.Raw))
		}
		slices.Sort(certs)
		return certs
	}
	return slices.Equal(raw(a), raw(b)) &&
		slices.Equal(slices.Sorted(maps.Keys(a.JWTAuthorities())),
			slices.Sorted(maps.Keys(b.JWTAuthorities())))
}

// TestDockerCompose runs docker-compose.yml as docs/docker.md describes and
// checks what that page promises. Three nodes form one cluster that serves the
// same bundle on every published port and replicates writes. A second `up`
// replaces the cluster TLS files, and the running nodes load them. The cluster
// keeps a leader while one node is stopped, and the node rejoins when started.
// Recreated containers find their state in the named volumes.
func TestDockerCompose(t *testing.T) {
	command := requireCompose(t)
	p := newComposeProject(t, command, buildImage(t))

	start := time.Now()
	p.up()
	leader := p.waitForLeader(composeNodes)
	t.Logf("three voters with leader %s %s after up started", leader,
		time.Since(start).Round(time.Millisecond))

	// The project's label finds everything `up` created, so the check at
	// cleanup that nothing is left can fail.
	created, err := p.resources()
	require.NoError(t, err)
	require.Len(t, created["container"], 7, "four certificate services and three nodes")
	require.Len(t, created["network"], 1)
	require.Len(t, created["volume"], 4, "three data volumes and cluster-tls; an "+
		"anonymous volume means that a node keeps state outside its named volume")

	// The commands of docs/docker.md, with -T because the test has no terminal.
	require.Contains(t, p.mustRun("exec", "-T", "node-1", "/bundlex", "healthcheck"),
		"healthy")
	var members []admin.ClusterMember
	out := p.mustRun("exec", "-T", "node-1", "/bundlex", "cluster", "members",
		"--output", "json")
	require.NoError(t, json.Unmarshal([]byte(out), &members), "output: %s", out)
	require.Len(t, members, len(composeNodes), "output: %s", out)
	for _, m := range members {
		require.Equal(t, "alive", m.Status, m.Name)
		require.Equal(t, "voter", m.Suffrage, m.Name)
	}

	p.waitServing(leader, composeNodes)
	t.Logf("every node serves the bundle and is ready %s after up started",
		time.Since(start).Round(time.Millisecond))
	p.waitHealthy(composeNodes...)
	t.Logf("Docker reports every node healthy %s after up started",
		time.Since(start).Round(time.Millisecond))

	// A write through a follower is forwarded to the leader and replicated.
	peerA, _, _ := dockerWebPKI(t, "peer-a.test")
	followers := slices.DeleteFunc(slices.Clone(composeNodes),
		func(s string) bool { return s == leader })
	p.setPeerBundle(followers[0], "peer-a.test", peerA)
	for _, service := range composeNodes {
		p.waitForPeerBundle(service, "peer-a.test", peerA)
	}

	// A second `up` runs the certificate services again, which replace the CA
	// and every node certificate, and leaves the running nodes alone. Each
	// node loads its new certificate from the shared volume.
	oldCA := p.readContainerFile("node-1", "/etc/bundlex/tls/bundlex-cluster-ca.pem")
	oldContainers := maps.Clone(p.containers)
	p.upAgain()
	require.Equal(t, oldContainers, p.containers, "a second up recreated a node")
	require.NotEqual(t, oldCA,
		p.readContainerFile("node-1", "/etc/bundlex/tls/bundlex-cluster-ca.pem"),
		"a second up kept the cluster CA")
	start = time.Now()
	for _, service := range composeNodes {
		p.waitForTLSReload(service, p.nodeCertSerial(service))
	}
	t.Logf("every node loaded its new cluster certificate %s after the second up",
		time.Since(start).Round(time.Millisecond))

	// Stopping the leader leaves two of three voters, a majority. The node
	// starts again below with its new certificate, so its rejoin shows that
	// the running nodes accept certificates of the new CA.
	leader = p.waitForLeader(composeNodes)
	stopped := leader
	p.mustRun("stop", stopped)
	require.Equal(t, "exited", p.containerState(stopped))
	running := slices.DeleteFunc(slices.Clone(composeNodes),
		func(s string) bool { return s == stopped })
	start = time.Now()
	leader = p.waitForLeader(running)
	t.Logf("%s elected %s after %s stopped", leader,
		time.Since(start).Round(time.Millisecond), stopped)
	p.waitServing(leader, running)

	peerB, _, _ := dockerWebPKI(t, "peer-b.test")
	writer := running[0]
	if writer == leader {
		writer = running[1]
	}
	p.setPeerBundle(writer, "peer-b.test", peerB)
	for _, service := range running {
		p.waitForPeerBundle(service, "peer-b.test", peerB)
	}

	// The restarted node keeps its Raft state in its volume, rejoins as a
	// voter and receives the write it missed.
	p.mustRun("start", stopped)
	require.Equal(t, "running", p.containerState(stopped))
	start = time.Now()
	leader = p.waitForLeader(composeNodes)
	p.waitCaughtUp(stopped, leader)
	p.waitForPeerBundle(stopped, "peer-b.test", peerB)
	t.Logf("%s rejoined and caught up %s after compose start", stopped,
		time.Since(start).Round(time.Millisecond))
	p.waitServing(leader, composeNodes)
	p.waitHealthy(composeNodes...)

	// New containers, as an image upgrade makes them, find the Raft state and
	// the authority keys in the named volumes: the same trust domain keys and
	// every stored bundle are back. --renew-anon-volumes gives the new
	// containers new anonymous volumes, as `down` and `up` would, so state
	// kept anywhere but in the named volumes is lost.
	before, err := p.localBundle(leader)
	require.NoError(t, err)
	oldContainers = maps.Clone(p.containers)
	start = time.Now()
	p.upAgain("--force-recreate", "--renew-anon-volumes")
	t.Logf("up --force-recreate took %s", time.Since(start).Round(time.Millisecond))
	for _, service := range composeNodes {
		require.NotEqual(t, oldContainers[service], p.containers[service],
			"up --force-recreate kept the container of %s", service)
	}
	start = time.Now()
	leader = p.waitForLeader(composeNodes)
	t.Logf("recreated nodes elected %s %s after up --force-recreate returned", leader,
		time.Since(start).Round(time.Millisecond))
	after, err := p.localBundle(leader)
	require.NoError(t, err)
	require.True(t, sameAuthorities(before, after),
		"recreated nodes publish other authorities than before")
	for _, service := range composeNodes {
		p.waitForPeerBundle(service, "peer-a.test", peerA)
		p.waitForPeerBundle(service, "peer-b.test", peerB)
	}
	p.waitServing(leader, composeNodes)
	p.waitHealthy(composeNodes...)
}
