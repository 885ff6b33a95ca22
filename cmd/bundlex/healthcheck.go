package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/bundlex/bundlex/internal/admin"
)

// healthyMessage is printed on success, in the words of SPIRE Server's healthcheck.
const healthyMessage = "Server is healthy."

func newHealthcheckCommand(g *globalOptions) *cobra.Command {
	var shallow bool
	cmd := &cobra.Command{
		Use:   "healthcheck",
		Short: "Check that the node is ready",
		Long: "Exit 0 and print \"" + healthyMessage + "\" when the node reports ready " +
			"on /v1/status; otherwise exit 1 with the reason. --shallow only checks that " +
			"the admin socket answers.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			status, err := g.client().Status(cmd.Context())
			if err != nil {
				return unhealthy(err, shallow)
			}
			if g.jsonOutput() {
				if err := writeJSON(cmd.OutOrStdout(), status); err != nil {
					return err
				}
			}
			if !shallow && !status.Ready {
				return fmt.Errorf("server is unhealthy: node %s is not ready: %s",
					status.NodeName, orText(status.ReadyError, "no reason given"))
			}
			if !g.jsonOutput() {
				fmt.Fprintln(cmd.OutOrStdout(), healthyMessage)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&shallow, "shallow", false,
		"only check that the admin socket answers, not that the node is ready")
	return cmd
}

// unhealthy returns nil for a shallow check that got an error response, because
// the node did respond on its socket.
func unhealthy(err error, shallow bool) error {
	var apiErr *admin.APIError
	if shallow && errors.As(err, &apiErr) {
		return nil
	}
	return fmt.Errorf("server is unhealthy: %w", err)
}
