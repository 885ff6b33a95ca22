package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newAuthorityCommand(g *globalOptions) *cobra.Command {
	return newGroupCommand("authority", "Manage the local trust domain's signing keys",
		newAuthorityRotateCommand(g),
	)
}

func newAuthorityRotateCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "rotate",
		Short: "Prepare new signing keys now",
		Long: "Make the node prepare new signing keys now instead of at the next scheduled " +
			"rotation. The new keys are published in the local bundle before they sign " +
			"anything, so that peers fetch them first (SPIFFE Federation 4.1).",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := g.client().RotateAuthority(cmd.Context())
			if err != nil {
				return err
			}
			summary := fmt.Sprintf("Prepared new signing keys for %s. Local bundle",
				b.TrustDomain)
			return g.printWritten(cmd.OutOrStdout(), b, summary)
		},
	}
}
