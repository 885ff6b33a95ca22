package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/bundlex/bundlex/config"
	"github.com/bundlex/bundlex/internal/node"
	"github.com/bundlex/bundlex/internal/telemetry"
)

// shutdownTimeout bounds a graceful stop after SIGINT or SIGTERM.
const shutdownTimeout = 30 * time.Second

func newServerCommand() *cobra.Command {
	var configFile string
	var dev bool
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run a bundlex node",
		Long: "Run a bundlex node: serve the local trust domain's bundle, poll federated " +
			"peers and keep every bundle in the replicated store.\n\n" +
			"With --dev the node needs nothing else: a temporary data directory, the bundle " +
			"endpoint on 127.0.0.1:8443 and the built-in authority.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, cleanup, err := loadServerConfig(cmd, configFile, dev)
			if err != nil {
				return err
			}
			defer cleanup()
			return runServer(cmd, cfg, dev)
		},
	}
	cmd.Flags().StringVar(&configFile, "config", "", "path of the YAML configuration file")
	cmd.Flags().BoolVar(&dev, "dev", false,
		"run a throwaway single node with built-in defaults (temporary data directory)")
	config.AddFlags(cmd.Flags())
	return cmd
}

func loadServerConfig(cmd *cobra.Command, file string, dev bool) (*config.Config, func(), error) {
	if !dev {
		cfg, err := config.Load(config.LoadOptions{ConfigFile: file, Flags: cmd.Flags()})
		if err != nil && file == "" {
			err = fmt.Errorf("%w\n(no --config file given: pass one, or try --dev for a "+
				"throwaway node)", err)
		}
		return cfg, func() {}, err
	}
	td, _ := cmd.Flags().GetString("trust-domain")
	cfg, err := config.Dev(td)
	if err != nil {
		return nil, nil, err
	}
	return cfg, func() { _ = os.RemoveAll(cfg.DataDir) }, nil
}

func runServer(cmd *cobra.Command, cfg *config.Config, dev bool) error {
	logger, err := telemetry.NewLogger(cfg.LogLevel, cfg.LogFormat, cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	node.Version = version
	n, err := node.New(cfg, logger)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := n.Start(ctx); err != nil {
		return err
	}
	if dev {
		printDevHelp(cmd, cfg, n)
	}
	select {
	case <-ctx.Done():
		logger.Info("shutting down", "signal", context.Cause(ctx))
	case <-n.Left():
		logger.Info("shutting down after leaving the cluster")
	}
	stopCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	return n.Stop(stopCtx)
}

func printDevHelp(cmd *cobra.Command, cfg *config.Config, n *node.Node) {
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "\nbundlex dev node for trust domain %s is running.\n", cfg.TrustDomain)
	fmt.Fprintf(out, "  bundle endpoint (https_spiffe): %s\n", n.EndpointURL())
	fmt.Fprintf(out, "  endpoint SPIFFE ID:             %s\n", cfg.BundleEndpoint.SPIFFEID)
	if cfg.Health.Address != "" {
		fmt.Fprintf(out, "  health and metrics:             http://%s/metrics\n", cfg.Health.Address)
	}
	fmt.Fprintf(out, "  data directory (removed on exit): %s\n\n", cfg.DataDir)
	fmt.Fprintf(out, "Try:\n  %s bundle show --socket %s\n", selfCommand(), cfg.Admin.SocketPath)
	fmt.Fprintf(out, "  curl -sk %s\n\nStop with Ctrl-C.\n", n.EndpointURL())
}
