package main

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"
)

// version is the release of this binary, set when building with
// -ldflags "-X main.version=v1.2.3".
var version = "dev"

// versionInfo is the --output json form of `bundlex version`.
type versionInfo struct {
	Version   string `json:"version"`
	GoVersion string `json:"go_version"`
	Platform  string `json:"platform"`
}

func newVersionCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of this binary",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			info := versionInfo{Version: version, GoVersion: runtime.Version(),
				Platform: runtime.GOOS + "/" + runtime.GOARCH}
			if g.jsonOutput() {
				return writeJSON(cmd.OutOrStdout(), info)
			}
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "bundlex %s (%s, %s)\n", info.Version,
				info.GoVersion, info.Platform)
			return err
		},
	}
}
