package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/bundlex/bundlex/bundle"
	"github.com/bundlex/bundlex/config"
	"github.com/bundlex/bundlex/federation"
	"github.com/bundlex/bundlex/internal/admin"
	"github.com/bundlex/bundlex/internal/authority"
	"github.com/bundlex/bundlex/internal/cluster"
	"github.com/bundlex/bundlex/internal/forward"
	"github.com/bundlex/bundlex/internal/output"
	"github.com/bundlex/bundlex/internal/telemetry"
	"github.com/bundlex/bundlex/internal/verify"
	"github.com/bundlex/bundlex/internal/workload"
	"github.com/bundlex/bundlex/raft"
)

// Version is the bundlex version reported by the admin API; the CLI sets it.
var Version = "dev"

// leadershipPoll bounds how long a missed leadership notification goes unnoticed.
const leadershipPoll = 500 * time.Millisecond

// Node is one running bundlex node.
type Node struct {
	// output writes the file output; nil without output.directory.
	output     *output.Writer
	cfg        *config.Config
	td         spiffeid.TrustDomain
	endpointID spiffeid.ID
	log        *slog.Logger
	now        func() time.Time

	store    *raft.Store
	builtin  *authority.Builtin
	file     *authority.FileBundle
	metrics  *telemetry.Metrics
	handler  *federation.Handler
	endpoint *federation.EndpointServer
	cert     *certificateSource
	poller   *federation.Poller
	admin    *admin.Server
	health   *telemetry.HealthServer

	views          *viewCache
	verifier       *verify.Verifier
	verifyServer   *federation.EndpointServer
	workloadServer *workload.Server
	getCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)

	mux         *forward.Mux
	forwarder   *forward.Client
	forwardSrv  *http.Server
	cluster     *cluster.Manager
	addressBook *cluster.AddressBook

	// freshAuthority is true when the built-in authority created its first keys
	// at this start.
	freshAuthority bool

	left     chan struct{}
	leftOnce sync.Once

	rotateCh chan chan error
	runCtx   context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

// New validates cfg and prepares a node. Nothing listens until Start.
func New(cfg *config.Config, logger *slog.Logger) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	td, err := bundle.ParseTrustDomain(cfg.TrustDomain)
	if err != nil {
		return nil, err
	}
	endpointID, err := bundle.ParseID(cfg.BundleEndpoint.SPIFFEID)
	if err != nil {
		return nil, err
	}
	n := &Node{
		cfg:        cfg,
		td:         td,
		endpointID: endpointID,
		log:        logger.With("node", cfg.NodeName),
		now:        time.Now,
		metrics:    telemetry.NewMetrics(),
		handler:    federation.NewHandler(cfg.BundleEndpoint.Path),
		rotateCh:   make(chan chan error),
		left:       make(chan struct{}),
	}
	n.views = &viewCache{n: n}
	n.poller = federation.NewPoller(&pollerStore{n: n}, n.pollerConfig())
	return n, nil
}

func (n *Node) pollerConfig() federation.PollerConfig {
	fed := n.cfg.Federation
	fetch := federation.DefaultFetchOptions()
	fetch.Timeout = fed.FetchTimeout
	fetch.MaxBundleSize = int64(fed.MaxBundleSize)
	fetch.MaxRedirects = fed.MaxRedirects
	fetch.UserAgent = "bundlex/" + Version
	return federation.PollerConfig{
		MinRefresh:      fed.MinRefresh,
		MaxRefresh:      fed.MaxRefresh,
		DefaultRefresh:  fed.DefaultRefresh,
		RetryBackoffMax: fed.RetryBackoffMax,
		Fetch:           fetch,
		Logger:          n.log.With("component", "poller"),
		Observe:         n.observeFetch,
	}
}

// Start opens the store and starts every listener and loop. On error, what was
// started is stopped again.
func (n *Node) Start(ctx context.Context) (err error) {
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	n.runCtx, n.cancel = runCtx, cancel
	defer func() {
		if err != nil {
			n.Stop(context.Background())
		}
	}()
	if err := n.lockOutput(); err != nil {
		return err
	}
	if err := n.openAuthority(); err != nil {
		return err
	}
	if err := n.openStore(); err != nil {
		return err
	}
	if n.freshAuthority && n.store.HadStateAtOpen() {
		n.log.Error("the authority created new keys although this node has Raft state: its "+
			"authority directory was replaced or lost, so peers reject this node's endpoint "+
			"certificate until they fetch the new bundle", "data_dir", n.cfg.DataDir)
	}
	if err := n.startEndpoint(runCtx); err != nil {
		return err
	}
	if err := n.startConsumers(runCtx); err != nil {
		return err
	}
	n.admin = admin.NewServer(n.cfg.Admin.SocketPath, &backend{n: n},
		n.log.With("component", "admin"), n.adminMiddleware)
	if err := n.admin.Start(); err != nil {
		n.admin = nil
		return err
	}
	if err := n.startForwarding(); err != nil {
		return err
	}
	if err := n.startCluster(); err != nil {
		return err
	}
	if n.cfg.Health.Address != "" {
		n.health = telemetry.NewHealthServer(n.cfg.Health.Address, n.Ready, n.metrics,
			n.log.With("component", "health"),
			telemetry.WithHealthLimits(n.cfg.Health.ReadTimeout, n.cfg.Health.MaxConnections))
		if err := n.health.Start(); err != nil {
			n.health = nil
			return err
		}
	}
	n.goRun(func() { n.watchStore(runCtx) })
	n.goRun(func() { n.runLeadership(runCtx) })
	n.goRun(func() { n.runAuthority(runCtx) })
	n.log.Info("node started", "trust_domain", n.td.Name(), "endpoint", n.EndpointURL(),
		"profile", n.cfg.BundleEndpoint.Profile, "admin_socket", n.cfg.Admin.SocketPath,
		"data_dir", n.cfg.DataDir)
	return nil
}

func (n *Node) goRun(fn func()) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		fn()
	}()
}

func (n *Node) openAuthority() error {
	a := n.cfg.Authority
	switch a.Type {
	case config.AuthorityBuiltin:
		dir := filepath.Join(n.cfg.DataDir, "authority")
		_, statErr := os.Stat(filepath.Join(dir, authority.StateFileName))
		n.freshAuthority = errors.Is(statErr, fs.ErrNotExist)
		b, err := authority.OpenBuiltin(authority.BuiltinConfig{
			Dir:            dir,
			TrustDomain:    n.td,
			CATTL:          a.CATTL,
			JWTKeyTTL:      a.JWTKeyTTL,
			X509SVIDMaxTTL: a.X509SVIDMaxTTL,
			JWTSVIDMaxTTL:  a.JWTSVIDMaxTTL,
			PublishLead:    n.cfg.EffectivePublishLead(),
			Logger:         n.log.With("component", "authority"),
		})
		if err != nil {
			return err
		}
		// Opening never advances the schedule: bring it to now before the endpoint
		// mints its first X509-SVID.
		if _, err := b.Tick(); err != nil {
			return err
		}
		n.builtin = b
	case config.AuthorityFile:
		file, err := authority.NewFileBundle(a.BundlePath, a.BundlePollInterval,
			n.log.With("component", "authority"))
		if err != nil {
			return fmt.Errorf("node: authority.bundle_path: %w", err)
		}
		n.file = file
		if _, err := n.file.Read(); err != nil {
			return fmt.Errorf("node: authority.bundle_path: %w", err)
		}
	}
	return nil
}

// Stop stops the loops, the listeners and the store, in reverse start order.
func (n *Node) Stop(ctx context.Context) error {
	if n.cancel != nil {
		n.cancel()
	}
	var errs []error
	if n.cluster != nil {
		errs = append(errs, n.cluster.Shutdown())
	}
	if n.forwardSrv != nil {
		errs = append(errs, n.forwardSrv.Shutdown(ctx))
	}
	errs = append(errs, n.stopConsumers(ctx)...)
	n.wg.Wait()
	if n.output != nil {
		// The writer's Run releases the lock too; this covers a start that failed
		// before Run began.
		errs = append(errs, n.output.Close())
	}
	if n.health != nil {
		errs = append(errs, n.health.Shutdown(ctx))
	}
	if n.admin != nil {
		errs = append(errs, n.admin.Shutdown(ctx))
	}
	if n.endpoint != nil {
		errs = append(errs, n.endpoint.Shutdown(ctx))
	}
	if n.store != nil {
		errs = append(errs, n.store.Close())
	} else if n.mux != nil {
		errs = append(errs, n.mux.Close())
	}
	n.log.Info("node stopped")
	return errors.Join(errs...)
}

// Ready reports why the node cannot serve yet, or nil.
func (n *Node) Ready() error {
	if n.store == nil {
		return errors.New("store not open")
	}
	if !n.store.IsCurrent() {
		return fmt.Errorf("replicated state not current yet: %s", n.store.NotCurrentReason())
	}
	if _, ok := n.store.LocalBundle(); !ok {
		return errors.New("local bundle not published yet")
	}
	if n.leaderID() == "" {
		return errors.New("no Raft leader known")
	}
	if n.handler == nil || n.endpoint == nil {
		return errors.New("bundle endpoint not started")
	}
	return nil
}

// EndpointURL returns the URL of this node's bundle endpoint.
func (n *Node) EndpointURL() string {
	addr := n.cfg.BundleEndpoint.Address
	if n.endpoint != nil {
		addr = n.endpoint.Addr().String()
	}
	return "https://" + addr + n.cfg.BundleEndpoint.Path
}

// leaderID returns the Raft ID of the current leader, empty when none is known.
func (n *Node) leaderID() string {
	id, _ := n.store.Leader()
	return string(id)
}

// Left is closed when the node has left the cluster by operator request. The
// process should then stop, because a node out of the cluster serves stale state.
func (n *Node) Left() <-chan struct{} { return n.left }

// VerifyURL returns the URL of the verify API, or "" when it is disabled.
func (n *Node) VerifyURL() string {
	if n.verifyServer == nil {
		return ""
	}
	return "https://" + n.verifyServer.Addr().String()
}

// Store returns the node's replicated store, for tests and tools.
func (n *Node) Store() *raft.Store { return n.store }
