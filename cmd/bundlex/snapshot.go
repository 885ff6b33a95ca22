package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func newSnapshotCommand(g *globalOptions) *cobra.Command {
	return newGroupCommand("snapshot", "Save and restore the cluster's state",
		newSnapshotSaveCommand(g),
		newSnapshotRestoreCommand(g),
	)
}

func newSnapshotSaveCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "save FILE",
		Short: "Save the cluster's whole state to a file (taken on the leader)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := g.client().SnapshotSave(cmd.Context())
			if err != nil {
				return err
			}
			if err := os.WriteFile(args[0], data, 0o600); err != nil {
				return fmt.Errorf("write snapshot file: %w", err)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "Saved a snapshot of %d bytes to %s.\n",
				len(data), args[0])
			return err
		},
	}
}

func newSnapshotRestoreCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "restore FILE",
		Short: "Replace the cluster's whole state with a saved snapshot",
		Long: "Replace the state of the whole cluster (bundles, relationships, peer status " +
			"and node keys) with a file from snapshot save. The Raft membership is kept. " +
			"Writes made after the snapshot are lost.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return fmt.Errorf("read snapshot file: %w", err)
			}
			if err := g.client().SnapshotRestore(cmd.Context(), data); err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "Restored the snapshot %s.\n", args[0])
			return err
		},
	}
}
