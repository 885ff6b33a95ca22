package config

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Placeholders of workload_api.svid_path_template. Each expands to the
// caller's Unix user or group ID in decimal, as the kernel reports it for the
// Workload API connection (SO_PEERCRED).
const (
	PlaceholderUID = "{uid}"
	PlaceholderGID = "{gid}"
)

// IDPathTemplate is a parsed workload_api.svid_path_template: a SPIFFE ID
// path with {uid} and {gid} placeholders. The zero value is an empty template,
// which expands to the empty path.
type IDPathTemplate struct {
	text string
}

// ParseIDPathTemplate checks that text starts with "/", uses no placeholder
// other than {uid} and {gid}, and expands to a valid SPIFFE ID path (SPIFFE-ID
// 2.2) for every user and group ID.
func ParseIDPathTemplate(text string) (IDPathTemplate, error) {
	if !strings.HasPrefix(text, "/") {
		return IDPathTemplate{}, errors.New("the path must start with /")
	}
	rest := text
	for {
		open := strings.IndexByte(rest, '{')
		if open < 0 {
			break
		}
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			return IDPathTemplate{}, fmt.Errorf("placeholder %q has no closing }", rest[open:])
		}
		placeholder := rest[open : open+end+1]
		if placeholder != PlaceholderUID && placeholder != PlaceholderGID {
			return IDPathTemplate{}, fmt.Errorf("unknown placeholder %s", placeholder)
		}
		rest = rest[open+end+1:]
	}
	t := IDPathTemplate{text: text}
	// Placeholders expand to digits only, so the longest ID comes from the
	// largest ID and any other ID passes the same checks.
	if err := spiffeid.ValidatePath(t.Expand(math.MaxUint32, math.MaxUint32)); err != nil {
		return IDPathTemplate{}, fmt.Errorf("the expanded path is not a valid SPIFFE ID "+
			"path: %w", err)
	}
	return t, nil
}

// Expand returns the path with the placeholders replaced by uid and gid.
func (t IDPathTemplate) Expand(uid, gid uint32) string {
	return strings.NewReplacer(
		PlaceholderUID, strconv.FormatUint(uint64(uid), 10),
		PlaceholderGID, strconv.FormatUint(uint64(gid), 10),
	).Replace(t.text)
}

// FixedPrefix returns the part of the template before its first placeholder,
// or the whole template when it has none.
func (t IDPathTemplate) FixedPrefix() string {
	if i := strings.IndexByte(t.text, '{'); i >= 0 {
		return t.text[:i]
	}
	return t.text
}

// CanExpandTo reports whether the template expands to path for some user and
// group ID from 0 to 2^32-1.
func (t IDPathTemplate) CanExpandTo(path string) bool {
	var pattern strings.Builder
	var placeholders []string
	pattern.WriteString("^")
	rest := t.text
	for {
		open := strings.IndexByte(rest, '{')
		if open < 0 {
			break
		}
		end := open + strings.IndexByte(rest[open:], '}')
		pattern.WriteString(regexp.QuoteMeta(rest[:open]))
		// Expand writes decimal numbers without leading zeros.
		pattern.WriteString("(0|[1-9][0-9]*)")
		placeholders = append(placeholders, rest[open:end+1])
		rest = rest[end+1:]
	}
	pattern.WriteString(regexp.QuoteMeta(rest) + "$")
	match := regexp.MustCompile(pattern.String()).FindStringSubmatch(path)
	if match == nil {
		return false
	}
	values := map[string]string{}
	for i, placeholder := range placeholders {
		value := match[i+1]
		if _, err := strconv.ParseUint(value, 10, 32); err != nil {
			return false
		}
		// A placeholder used twice expands to the same number both times.
		if previous, ok := values[placeholder]; ok && previous != value {
			return false
		}
		values[placeholder] = value
	}
	return true
}

// HasPlaceholder reports whether the expansion depends on the caller.
func (t IDPathTemplate) HasPlaceholder() bool {
	return strings.IndexByte(t.text, '{') >= 0
}

// String returns the template as written.
func (t IDPathTemplate) String() string { return t.text }
