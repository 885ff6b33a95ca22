package main

import (
	"fmt"
	"strings"
)

// spireMintFlags maps the flags of SPIRE Server's `x509 mint` and `jwt mint`
// (one dash, camelCase, parsed by Go's flag package) to the flags of the
// bundlex commands of the same names, so that a SPIRE command line runs
// unchanged. SPIRE's -dns and -output have no counterpart here.
var spireMintFlags = map[string]string{
	"spiffeID": "spiffe-id",
	"ttl":      "ttl",
	"audience": "audience",
	"write":    "write",
}

// globalValueFlags are the root flags that take a value, which
// rewriteSPIREFlags skips while it looks for the command name.
var globalValueFlags = map[string]bool{"--socket": true, "--output": true, "--timeout": true}

// rewriteSPIREFlags returns args with SPIRE's mint flags, such as
// -spiffeID=spiffe://example.org/w or -ttl 1h, spelled as bundlex flags when
// the command is `x509 mint` or `jwt mint`. Other commands and flags, and
// everything after "--", pass unchanged. SPIRE's -dns, which bundlex does not
// support, is an error that names it.
func rewriteSPIREFlags(args []string) ([]string, error) {
	start, ok := spireMintCommandEnd(args)
	if !ok {
		return args, nil
	}
	out := append([]string(nil), args[:start]...)
	for i, arg := range args[start:] {
		if arg == "--" {
			return append(out, args[start+i:]...), nil
		}
		if !strings.HasPrefix(arg, "-") || strings.HasPrefix(arg, "--") {
			out = append(out, arg)
			continue
		}
		name, value, hasValue := strings.Cut(arg[1:], "=")
		if name == "dns" {
			return nil, flagErrorf("-dns is not supported: bundlex mints X509-SVIDs with " +
				"the SPIFFE ID as the only name; remove -dns")
		}
		bundlexName, ok := spireMintFlags[name]
		if !ok {
			out = append(out, arg)
			continue
		}
		if hasValue {
			out = append(out, fmt.Sprintf("--%s=%s", bundlexName, value))
		} else {
			out = append(out, "--"+bundlexName)
		}
	}
	return out, nil
}

// spireMintCommandEnd returns the index after the command name when args run
// `x509 mint` or `jwt mint`, skipping the root flags before it.
func spireMintCommandEnd(args []string) (int, bool) {
	var words []string
	for i := 0; i < len(args); i++ {
		arg := args[i]
		switch {
		case arg == "--":
			return 0, false
		case globalValueFlags[arg]:
			i++ // the flag's value
		case strings.HasPrefix(arg, "-"):
		default:
			words = append(words, arg)
			if len(words) == 2 {
				isMint := words[1] == "mint" && (words[0] == "x509" || words[0] == "jwt")
				return i + 1, isMint
			}
		}
	}
	return 0, false
}
