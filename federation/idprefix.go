package federation

import (
	"fmt"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/bundlex/bundlex/bundle"
)

// IDPrefixError is an ID prefix that ParseIDPrefixes rejects. ID prefixes limit
// the SPIFFE IDs a relationship trusts (allowed_id_prefixes) and the IDs the
// built-in authority mints (authority.mint_allowed_id_prefixes).
type IDPrefixError struct {
	// Prefix is the rejected value as given.
	Prefix string
	// Reason is what is wrong and what to use instead, without the value.
	Reason string
}

func (e *IDPrefixError) Error() string {
	return fmt.Sprintf("invalid ID prefix %q: %s", e.Prefix, e.Reason)
}

// ParseIDPrefixes checks each prefix and returns them in their order with exact
// duplicates removed, or nil for none. A prefix is the trust domain ID of td or a
// SPIFFE ID in td, optionally followed by one "/". So it has no empty, "." or
// ".." path segment and no query or fragment (SPIFFE-ID 2.2), because an ID with
// such a path is invalid and no ID would ever match it. The error is an
// *IDPrefixError for the first invalid prefix.
//
// A prefix matches whole path segments: spiffe://td/agents matches
// spiffe://td/agents and spiffe://td/agents/x, but not spiffe://td/agentsx, and
// spiffe://td/agents/ matches only the IDs below spiffe://td/agents.
func ParseIDPrefixes(td spiffeid.TrustDomain, prefixes []string) ([]string, error) {
	var out []string
	seen := make(map[string]bool, len(prefixes))
	for _, prefix := range prefixes {
		if err := checkIDPrefix(td, prefix); err != nil {
			return nil, err
		}
		if !seen[prefix] {
			seen[prefix] = true
			out = append(out, prefix)
		}
	}
	return out, nil
}

func checkIDPrefix(td spiffeid.TrustDomain, prefix string) error {
	example := td.IDString() + "/agents/"
	reject := func(format string, args ...any) error {
		return &IDPrefixError{Prefix: prefix, Reason: fmt.Sprintf(format, args...)}
	}
	if prefix == "" {
		return reject("it is empty; use a SPIFFE ID of %s, such as %s", td.Name(), example)
	}
	if len(prefix) > bundle.MaxIDLength {
		return reject("it has %d bytes; a SPIFFE ID has at most %d (SPIFFE-ID 2.3)",
			len(prefix), bundle.MaxIDLength)
	}
	// The trailing "/" is the only character a prefix may add to an ID.
	id, err := spiffeid.FromString(strings.TrimSuffix(prefix, "/"))
	if err != nil {
		return reject("%v; use a SPIFFE ID of %s, optionally ending in /, such as %s",
			err, td.Name(), example)
	}
	if id.TrustDomain() != td {
		return reject("it is not in trust domain %s; start it with %s/", td.Name(),
			td.IDString())
	}
	return nil
}
