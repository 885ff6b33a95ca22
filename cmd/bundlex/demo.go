package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/bundlex/bundlex/config"
	"github.com/bundlex/bundlex/internal/admin"
	"github.com/bundlex/bundlex/internal/node"
	"github.com/bundlex/bundlex/internal/telemetry"
)

// Settings of `bundlex demo`.
const (
	// demoRefreshHint is the spiffe_refresh_hint of every demo node, and with
	// demoMinRefresh the interval at which each node polls its peer, so that a
	// key rotation during --keep reaches the peer within seconds. 1s is the
	// smallest hint a bundle can publish.
	demoRefreshHint = time.Second
	demoMinRefresh  = time.Second
	// demoWaitTimeout bounds each wait for the nodes: readiness, the first fetch
	// of each peer and every admin or verify request.
	demoWaitTimeout = 30 * time.Second
	// demoStopTimeout bounds the graceful stop of each node.
	demoStopTimeout = 10 * time.Second
	// demoStartAttempts bounds how often the demo builds and starts its nodes
	// when a port it picked was taken by another process before a node bound it.
	demoStartAttempts = 3
	// demoPollInterval is the pause between two checks of a condition.
	demoPollInterval = 50 * time.Millisecond
	// demoTokenTTL is the lifetime of the demo's JWT-SVIDs.
	demoTokenTTL = time.Minute

	demoAgentID  = "spiffe://org-a.test/agents/planner"
	demoIntruder = "spiffe://org-x.test/agents/planner"
	demoAudience = "org-b"
)

// demoOrg is one organization of the demo: a single-node bundlex cluster.
type demoOrg struct {
	label   string
	cfg     *config.Config
	node    *node.Node
	client  *admin.Client
	started bool
}

func (o *demoOrg) td() string { return o.cfg.TrustDomain }

func newDemoCommand() *cobra.Command {
	var keep bool
	var logLevel string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Show two organizations trusting each other's agents, on loopback",
		Long: "Start three bundlex nodes in this process: org-a.test and org-b.test, " +
			"federated both ways over https_spiffe, and org-x.test, which nobody federates " +
			"with. Org A mints a JWT-SVID for " + demoAgentID + ", org B's verify API " +
			"accepts it over TLS, and rejects a token that org X minted. Every node listens " +
			"on 127.0.0.1 only and keeps its data in a temporary directory that is removed " +
			"on exit.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := telemetry.NewLogger(logLevel, config.LogFormatText, cmd.ErrOrStderr())
			if err != nil {
				return flagErrorf("invalid --log-level %q: use debug, info, warn or error",
					logLevel)
			}
			return runDemo(cmd.Context(), cmd.OutOrStdout(), logger, keep)
		},
	}
	cmd.Flags().BoolVar(&keep, "keep", false,
		"keep the nodes running after the demo until Ctrl-C, and print how to reach them")
	cmd.Flags().StringVar(&logLevel, "log-level", "error",
		"level of the nodes' logs on standard error: debug, info, warn or error")
	return cmd
}

// runDemo runs every step, printing a few lines for each, and stops the nodes
// and removes their data before it returns.
func runDemo(ctx context.Context, out io.Writer, logger *slog.Logger, keep bool) (err error) {
	began := time.Now()
	defer func() {
		// A step that fails because of Ctrl-C names the step it was in, but the
		// cause the user needs to read is the interruption.
		if err != nil && ctx.Err() != nil {
			err = fmt.Errorf("demo: interrupted: %w", context.Cause(ctx))
		}
	}()
	fmt.Fprintln(out, "bundlex demo: an agent of org A calls a service of org B, on loopback.")
	orgs, err := startDemoOrgsWithRetry(ctx, logger)
	defer func() { stopDemoOrgs(orgs) }()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "1. Started three single-node clusters in %s, each with its own CA:\n",
		time.Since(began).Round(time.Millisecond))
	for _, o := range orgs {
		fmt.Fprintf(out, "   %s  %s  bundle endpoint %s\n", o.label, o.td(), o.node.EndpointURL())
	}
	if err := federateDemo(ctx, out, orgs[0], orgs[1]); err != nil {
		return err
	}
	verifyURL, err := verifyDemoTokens(ctx, out, orgs[0], orgs[1], orgs[2])
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Done in %s: org B accepts org A's agent and nothing from org X.\n",
		time.Since(began).Round(time.Millisecond))
	if keep {
		printDemoAccess(out, orgs, verifyURL)
		<-ctx.Done()
		fmt.Fprintln(out, "Stopping the nodes and removing their data.")
	}
	return nil
}

// startDemoOrgsWithRetry builds and starts the organizations. The ports of
// Raft, gossip and the verify API are picked free before the nodes bind them, so
// another process may take one in between. The nodes are then stopped and built
// again on new ports, up to demoStartAttempts times in all.
func startDemoOrgsWithRetry(ctx context.Context, logger *slog.Logger) ([]*demoOrg, error) {
	for attempt := 1; ; attempt++ {
		orgs, err := newDemoOrgs(logger)
		if err == nil {
			err = startDemoOrgs(ctx, orgs)
			if err != nil {
				err = fmt.Errorf("demo: start the nodes: %w", err)
			}
		}
		if err == nil || attempt == demoStartAttempts || !addressInUse(err) {
			return orgs, err
		}
		logger.Warn("a port of the demo was taken; starting the nodes again on new ports",
			"attempt", attempt, "error", err)
		stopDemoOrgs(orgs)
	}
}

// addressInUse reports whether err comes from binding a port that is taken.
// memberlist formats the errors of its listeners with %v, so the message is
// checked as well as the error chain.
func addressInUse(err error) bool {
	return errors.Is(err, syscall.EADDRINUSE) ||
		strings.Contains(err.Error(), "address already in use")
}

// newDemoOrgs builds the configuration and node of each organization. On error
// the organizations built so far are returned, so that the caller removes them.
func newDemoOrgs(logger *slog.Logger) ([]*demoOrg, error) {
	var orgs []*demoOrg
	for _, spec := range []struct{ label, td string }{
		{"org A", "org-a.test"}, {"org B", "org-b.test"}, {"org X", "org-x.test"},
	} {
		cfg, err := config.Dev(spec.td)
		if err != nil {
			return orgs, fmt.Errorf("demo: configure %s: %w", spec.td, err)
		}
		org := &demoOrg{label: spec.label, cfg: cfg}
		orgs = append(orgs, org)
		cfg.NodeName = spec.td
		cfg.BundleEndpoint.Address = "127.0.0.1:0"
		cfg.BundleEndpoint.RefreshHint = demoRefreshHint
		cfg.Federation.MinRefresh = demoMinRefresh
		// Health and metrics are left out: the demo talks to the admin API.
		cfg.Health.Address = ""
		if spec.td == "org-b.test" {
			if cfg.Consumers.VerifyAddress, err = freeLoopbackAddr(); err != nil {
				return orgs, err
			}
		}
		if org.node, err = node.New(cfg, logger.With("trust_domain", spec.td)); err != nil {
			return orgs, fmt.Errorf("demo: configure %s: %w", spec.td, err)
		}
		org.client = admin.NewClient(cfg.Admin.SocketPath, demoWaitTimeout)
	}
	return orgs, nil
}

// freeLoopbackAddr returns 127.0.0.1 with a port that was free a moment ago.
// Another process may take the port before the verify API binds it, which
// startDemoOrgsWithRetry handles.
func freeLoopbackAddr() (string, error) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("demo: find a free loopback port for the verify API: %w", err)
	}
	defer listener.Close()
	return listener.Addr().String(), nil
}

// startDemoOrgs starts the nodes concurrently and waits until each is ready.
func startDemoOrgs(ctx context.Context, orgs []*demoOrg) error {
	errs := make([]error, len(orgs))
	var wg sync.WaitGroup
	for i, o := range orgs {
		wg.Go(func() {
			if err := o.node.Start(ctx); err != nil {
				errs[i] = fmt.Errorf("%s: %w", o.td(), err)
				return
			}
			o.started = true
			errs[i] = pollUntil(ctx, o.td()+" ready", o.node.Ready)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// stopDemoOrgs stops the started nodes concurrently and removes every data
// directory. Stop errors are not returned, because the demo's outcome is
// already known and the node logs them.
func stopDemoOrgs(orgs []*demoOrg) {
	var wg sync.WaitGroup
	for _, o := range orgs {
		wg.Go(func() {
			if o.started {
				ctx, cancel := context.WithTimeout(context.Background(), demoStopTimeout)
				defer cancel()
				_ = o.node.Stop(ctx)
			}
			_ = os.RemoveAll(o.cfg.DataDir)
		})
	}
	wg.Wait()
}

// pollUntil calls check until it returns nil, ctx ends or demoWaitTimeout
// passes, and then returns check's last error.
func pollUntil(ctx context.Context, what string, check func() error) error {
	ctx, cancel := context.WithTimeout(ctx, demoWaitTimeout)
	defer cancel()
	ticker := time.NewTicker(demoPollInterval)
	defer ticker.Stop()
	for {
		err := check()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w (last check: %v)", what, ctx.Err(), err)
		case <-ticker.C:
		}
	}
}

// federateDemo federates a and b both ways and waits until each has fetched the
// other's bundle from its endpoint.
func federateDemo(ctx context.Context, out io.Writer, a, b *demoOrg) error {
	if err := createDemoRelationships(ctx, a, b); err != nil {
		return fmt.Errorf("demo: federate org A and org B: %w", err)
	}
	fmt.Fprintln(out, "2. Federated org A and org B both ways over https_spiffe, each "+
		"bootstrapped\n   with the other's bundle. Nobody federates with org X.")
	seqA, err := waitForFetched(ctx, b, a)
	if err != nil {
		return fmt.Errorf("demo: org B fetches org A's bundle: %w", err)
	}
	seqB, err := waitForFetched(ctx, a, b)
	if err != nil {
		return fmt.Errorf("demo: org A fetches org B's bundle: %w", err)
	}
	fmt.Fprintf(out, "3. Each fetched the other's bundle from its endpoint: org B holds "+
		"%s\n   sequence %d, org A holds %s sequence %d.\n", a.td(), seqA, b.td(), seqB)
	return nil
}

// createDemoRelationships creates a relationship on each side, bootstrapped
// with the other side's current bundle. SPIFFE Federation 5.2.2: a client authenticates a
// self-serving https_spiffe endpoint with the bundle it is about to fetch, so
// the first connection needs a copy obtained out of band.
func createDemoRelationships(ctx context.Context, a, b *demoOrg) error {
	for _, pair := range [][2]*demoOrg{{a, b}, {b, a}} {
		holder, owner := pair[0], pair[1]
		local, err := owner.client.LocalBundle(ctx)
		if err != nil {
			return fmt.Errorf("read %s's bundle: %w", owner.td(), err)
		}
		_, err = holder.client.CreateRelationship(ctx, admin.RelationshipRequest{
			TrustDomain:       owner.td(),
			BundleEndpointURL: owner.node.EndpointURL(),
			Profile:           config.ProfileHTTPSSPIFFE,
			EndpointSPIFFEID:  owner.cfg.BundleEndpoint.SPIFFEID,
			Bootstrap:         string(local.Document),
			BootstrapFormat:   config.BundleFormatSPIFFE,
		})
		if err != nil {
			return fmt.Errorf("create the relationship for %s on %s: %w", owner.td(),
				holder.td(), err)
		}
	}
	return nil
}

// waitForFetched triggers fetches of owner's bundle on holder until holder
// stores a bundle fetched from owner's endpoint in place of the bootstrap
// bundle, and returns its sequence.
func waitForFetched(ctx context.Context, holder, owner *demoOrg) (uint64, error) {
	var sequence uint64
	err := pollUntil(ctx, holder.td()+" to fetch "+owner.td(), func() error {
		stored, err := holder.client.Bundle(ctx, owner.td())
		if err == nil && stored.Source == "fetched" {
			sequence = stored.Sequence
			return nil
		}
		rel, err := holder.client.RefreshRelationship(ctx, owner.td())
		if err != nil {
			return err
		}
		if rel.Status.LastError != "" {
			return errors.New(rel.Status.LastError)
		}
		return fmt.Errorf("stored bundle of %s has source %q", owner.td(),
			rel.Status.BundleSource)
	})
	return sequence, err
}

// printDemoAccess prints where the kept nodes listen and commands to try.
func printDemoAccess(out io.Writer, orgs []*demoOrg, verifyURL string) {
	fmt.Fprintln(out, "\nThe nodes keep running until Ctrl-C:")
	for _, o := range orgs {
		fmt.Fprintf(out, "  %-5s --socket %s   bundle endpoint %s\n", o.label,
			o.cfg.Admin.SocketPath, o.node.EndpointURL())
	}
	fmt.Fprintf(out, demoTryText, verifyURL, orgs[1].cfg.Admin.SocketPath,
		orgs[0].cfg.Admin.SocketPath, demoAgentID, demoAudience, selfCommand())
}

// demoTryText lists commands for the kept nodes. curl needs -k because the
// verify API presents an X509-SVID, which names a SPIFFE ID and no host name.
// The arguments are the verify URL, the sockets of org B and org A, the agent's
// ID, the audience and the command that runs bundlex.
const demoTryText = `  org B verify API %[1]s

Try:
  %[6]s --socket %[2]s federation show --trust-domain org-a.test
  TOKEN=$(%[6]s --socket %[3]s svid mint jwt --spiffe-id %[4]s --audience %[5]s)
  curl -sk -H 'Content-Type: application/json' \
    -d "{\"token\":\"$TOKEN\",\"audience\":\"%[5]s\"}" %[1]s
  %[6]s --socket %[2]s federation update --trust-domain org-a.test \
    --allowed-id-prefix spiffe://org-a.test/agents/
(curl -k skips the certificate check: the verify API presents an X509-SVID, which
names a SPIFFE ID and no host name.)
`
