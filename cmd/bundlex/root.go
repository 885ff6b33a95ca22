// Command bundlex runs a bundlex node (`bundlex server`) and administers a running
// node through its admin API on a Unix socket. The administration commands use
// the vocabulary of SPIRE Server's CLI: `bundle show|list|set|delete`,
// `federation create|list|show|update|delete|refresh` and `healthcheck`.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/bundlex/bundlex/config"
	"github.com/bundlex/bundlex/internal/admin"
)

const (
	// defaultDataDir is the data directory when BUNDLEX_DATA_DIR is not set.
	defaultDataDir = "/var/lib/bundlex"
	// defaultTimeout bounds each admin request unless --timeout is given.
	defaultTimeout = 30 * time.Second
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one command line and returns the process exit status: 0 on
// success, 1 after printing "Error: <message>" to stderr. An unknown flag,
// command or argument also prints the command's usage, and an invalid flag
// value prints where to find the command's help.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRootCommand()
	args, err := rewriteSPIREFlags(args)
	if err != nil {
		fmt.Fprintf(stderr, "Error: %s\n", err)
		return 1
	}
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)

	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "Error: %s\n", err)
	var usageErr *usageError
	var flagErr *flagError
	switch {
	case cmd == nil:
	case errors.As(err, &usageErr):
		fmt.Fprintf(stderr, "\n%s", cmd.UsageString())
	case errors.As(err, &flagErr):
		fmt.Fprintf(stderr, "Run '%s --help' for the flags of this command.\n",
			cmd.CommandPath())
	}
	return 1
}

// globalOptions are the persistent flags every administration command reads.
type globalOptions struct {
	socket  string
	output  string
	timeout time.Duration
}

func (g *globalOptions) client() *admin.Client {
	return admin.NewClient(g.socket, g.timeout)
}

func (g *globalOptions) jsonOutput() bool { return g.output == outputJSON }

func (g *globalOptions) validate() error {
	if g.output != outputTable && g.output != outputJSON {
		return flagErrorf("invalid --output %q: use %s or %s", g.output, outputTable, outputJSON)
	}
	if g.timeout <= 0 {
		return flagErrorf("invalid --timeout %s: pass a positive duration such as 30s",
			g.timeout)
	}
	if g.socket == "" {
		return flagErrorf("missing --socket: pass the path of the node's admin socket")
	}
	return nil
}

func newRootCommand() *cobra.Command {
	g := &globalOptions{}
	root := &cobra.Command{
		Use:   "bundlex",
		Short: "Run and administer a bundlex SPIFFE federation node",
		// run prints errors itself, and prints usage only for flag errors.
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(*cobra.Command, []string) error {
			return g.validate()
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &usageError{err: err}
	})

	flags := root.PersistentFlags()
	flags.StringVar(&g.socket, "socket", defaultSocketPath(),
		"path of the node's admin socket; the default is $"+
			config.EnvName("admin.socket_path")+", else admin.sock in $"+
			config.EnvName("data_dir")+" or in "+defaultDataDir)
	flags.StringVar(&g.output, "output", outputTable,
		"output format: "+outputTable+" or "+outputJSON)
	flags.DurationVar(&g.timeout, "timeout", defaultTimeout,
		"time limit of each request to the node, such as 30s or 2m")

	root.AddCommand(
		newServerCommand(),
		newBundleCommand(g),
		newFederationCommand(g),
		newAuthorityCommand(g),
		newX509Command(g),
		newJWTCommand(g),
		newSVIDCommand(g),
		newClusterCommand(g),
		newSnapshotCommand(g),
		newHealthcheckCommand(g),
		newVersionCommand(g),
		newDemoCommand(),
	)
	return root
}

// defaultSocketPath follows the node's own default for admin.socket_path:
// <data_dir>/admin.sock, each read from its BUNDLEX_ environment variable.
func defaultSocketPath() string {
	if path := os.Getenv(config.EnvName("admin.socket_path")); path != "" {
		return path
	}
	dataDir := os.Getenv(config.EnvName("data_dir"))
	if dataDir == "" {
		dataDir = defaultDataDir
	}
	return filepath.Join(dataDir, "admin.sock")
}

// newGroupCommand returns a command that only holds subcommands. Without
// arguments it prints its help. An unknown subcommand is a usage error, where
// cobra would print the help and exit 0.
func newGroupCommand(use, short string, children ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	cmd.AddCommand(children...)
	return cmd
}

// usageError is an error in the shape of the command line: an unknown flag,
// command or argument, or a flag value of the wrong type. run prints it with
// the command's usage.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) error {
	return &usageError{err: fmt.Errorf(format, args...)}
}

// flagError is a flag that is missing, or whose value is invalid or conflicts
// with another flag. run prints it with a pointer to the command's help rather
// than the whole usage, which would push the message out of sight.
type flagError struct{ err error }

func (e *flagError) Error() string { return e.err.Error() }
func (e *flagError) Unwrap() error { return e.err }

func flagErrorf(format string, args ...any) error {
	return &flagError{err: fmt.Errorf(format, args...)}
}

// noArgs rejects positional arguments: every value is passed with a flag.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	if cmd.HasSubCommands() {
		return usageErrorf("unknown command %q for %q; run '%s --help' to list the commands",
			args[0], cmd.CommandPath(), cmd.CommandPath())
	}
	return usageErrorf("unexpected argument %q: %q takes only flags", args[0],
		cmd.CommandPath())
}
