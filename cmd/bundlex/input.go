package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/bundlex/bundlex/bundle"
	"github.com/bundlex/bundlex/internal/admin"
)

// maxInputBytes is the largest bundle or CA file the CLI reads, in bytes. The
// node rejects larger requests anyway (admin.MaxRequestBody).
const maxInputBytes = admin.MaxRequestBody

// stdinPath names standard input in --path, --bundle-path and --ca-file.
const stdinPath = "-"

// parseTrustDomainFlag checks a trust domain given as "org-b.test" or
// "spiffe://org-b.test" and returns its name.
func parseTrustDomainFlag(flag, value string) (string, error) {
	if value == "" {
		return "", flagErrorf("missing %s: pass the trust domain, such as %s org-b.test",
			flag, flag)
	}
	td, err := bundle.ParseTrustDomain(value)
	if err != nil {
		return "", &flagError{err: fmt.Errorf("invalid %s: %w", flag, err)}
	}
	return td.Name(), nil
}

// checkFormatFlag checks a bundle format name.
func checkFormatFlag(flag, value string) error {
	if value != formatSPIFFE && value != formatPEM {
		return flagErrorf("invalid %s %q: use %s or %s", flag, value, formatSPIFFE, formatPEM)
	}
	return nil
}

// readInput reads the file that flag names, or standard input for "-". An empty
// input is an error because no bundle or CA file is empty.
func readInput(cmd *cobra.Command, flag, path string) (string, error) {
	reader, closeInput, err := openInput(cmd, flag, path)
	if err != nil {
		return "", err
	}
	defer closeInput()

	data, err := io.ReadAll(io.LimitReader(reader, maxInputBytes+1))
	if err != nil {
		return "", fmt.Errorf("read %s %s: %w", flag, path, err)
	}
	if len(data) > maxInputBytes {
		return "", fmt.Errorf("%s %s is larger than %d bytes, the maximum the node accepts; "+
			"check that it names a bundle or CA file", flag, path, maxInputBytes)
	}
	if len(data) == 0 {
		return "", fmt.Errorf("%s %s is empty; pass a file with the content", flag, path)
	}
	return string(data), nil
}

func openInput(cmd *cobra.Command, flag, path string) (io.Reader, func(), error) {
	if path == stdinPath {
		return cmd.InOrStdin(), func() {}, nil
	}
	file, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("invalid %s: %w", flag, err)
	}
	info, err := file.Stat()
	if err != nil {
		file.Close()
		return nil, nil, fmt.Errorf("read %s %s: %w", flag, path, err)
	}
	if info.IsDir() {
		file.Close()
		return nil, nil, fmt.Errorf("%s %s is a directory; pass a file", flag, path)
	}
	return file, func() { file.Close() }, nil
}
