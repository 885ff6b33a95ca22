package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bundlex/bundlex/internal/admin"
)

// Values of --output.
const (
	outputTable = "table"
	outputJSON  = "json"
)

// Values of --format and --bundle-format.
const (
	formatSPIFFE = "spiffe"
	formatPEM    = "pem"
)

// Relationship states shown by `federation list` and `federation show`.
const (
	stateOK      = "ok"
	stateFailing = "failing"
	statePending = "pending"
)

// deletedResult is the --output json result of a delete. The API returns 204 No
// Content for a delete, so there is no API object to print.
type deletedResult struct {
	TrustDomain string `json:"trust_domain"`
	Deleted     bool   `json:"deleted"`
}

// writeJSON prints v as indented JSON, the same objects the admin API returns.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writeBundleBody prints a bundle in one of the --format encodings.
func writeBundleBody(w io.Writer, b admin.Bundle, format string) error {
	if format == formatPEM {
		_, err := io.WriteString(w, b.PEM)
		return err
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, b.Document, "", "  "); err != nil {
		return fmt.Errorf("the node returned an invalid bundle document for %s: %w",
			b.TrustDomain, err)
	}
	buf.WriteByte('\n')
	_, err := buf.WriteTo(w)
	return err
}

// writeBundleHeader prints the banner that SPIRE's `bundle list` puts above each
// trust domain's bundle.
func writeBundleHeader(w io.Writer, td string) error {
	banner := strings.Repeat("*", 40)
	_, err := fmt.Fprintf(w, "%s\n* %s\n%s\n", banner, td, banner)
	return err
}

// describeBundle summarizes a stored bundle in one line for write commands.
func describeBundle(b admin.Bundle) string {
	sequence := "no sequence"
	if b.HasSequence {
		sequence = "sequence " + strconv.FormatUint(b.Sequence, 10)
	}
	return fmt.Sprintf("%s, %s, %s", sequence, plural(b.X509Keys, "X.509 authority",
		"X.509 authorities"), plural(b.JWTKeys, "JWT key", "JWT keys"))
}

func plural(n int, singular, pluralForm string) string {
	if n == 1 {
		return "1 " + singular
	}
	return strconv.Itoa(n) + " " + pluralForm
}

// relationshipState condenses a peer's status: failing after a failed fetch,
// ok after a successful one, and pending before the first fetch succeeds.
func relationshipState(s admin.PeerStatus) string {
	switch {
	case s.ConsecutiveFailures > 0:
		return stateFailing
	case !s.LastSuccess.IsZero():
		return stateOK
	}
	return statePending
}

// formatTime returns t in UTC as RFC 3339, or ifZero for the zero time.
func formatTime(t time.Time, ifZero string) string {
	if t.IsZero() {
		return ifZero
	}
	return t.UTC().Format(time.RFC3339)
}

func storedSequence(s admin.PeerStatus) string {
	if !s.HasBundle {
		return "-"
	}
	return strconv.FormatUint(s.StoredSequence, 10)
}

func yesNo(v bool) string {
	if v {
		return "yes"
	}
	return "no"
}

func orText(s, ifEmpty string) string {
	if s == "" {
		return ifEmpty
	}
	return s
}

// oneLine keeps a multi-line message from breaking the aligned columns.
func oneLine(s string) string {
	return strings.NewReplacer("\r\n", " ", "\n", " ", "\t", " ").Replace(s)
}

// writeRelationshipTable prints one row per relationship for `federation list`.
func writeRelationshipTable(w io.Writer, rels []admin.Relationship) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TRUST DOMAIN\tPROFILE\tBUNDLE ENDPOINT URL\tSEQUENCE\tLAST SUCCESS\tSTATE")
	for _, r := range rels {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.TrustDomain, r.Profile,
			r.BundleEndpointURL, storedSequence(r.Status),
			formatTime(r.Status.LastSuccess, "never"), relationshipState(r.Status))
	}
	return tw.Flush()
}

// writeRelationship prints every field of a relationship and its whole status as
// an aligned key/value block for `federation show`.
func writeRelationship(w io.Writer, r admin.Relationship) error {
	s := r.Status
	prefixes := "any SPIFFE ID of the trust domain"
	if len(r.AllowedIDPrefixes) > 0 {
		prefixes = strings.Join(r.AllowedIDPrefixes, ", ")
	}
	definedIn := "admin API"
	if r.Static {
		definedIn = "configuration file"
	}
	rows := [][2]string{
		{"Trust domain", r.TrustDomain},
		{"Bundle endpoint URL", r.BundleEndpointURL},
		{"Bundle endpoint profile", r.Profile},
		{"Endpoint SPIFFE ID", orText(r.EndpointSPIFFEID, "-")},
		{"Extra CA certificates", yesNo(r.HasCA)},
		{"Allowed ID prefixes", prefixes},
		{"Defined in", definedIn},
		{"Created at", formatTime(r.CreatedAt, "-")},
		{"Updated at", formatTime(r.UpdatedAt, "-")},
		{"State", relationshipState(s)},
		{"Bundle stored", yesNo(s.HasBundle)},
		{"Stored sequence", storedSequence(s)},
		{"Bundle source", orText(s.BundleSource, "-")},
		{"X.509 authorities", strconv.Itoa(s.X509Keys)},
		{"JWT keys", strconv.Itoa(s.JWTKeys)},
		{"Skipped keys", strconv.Itoa(s.SkippedKeys)},
		{"Last attempt", formatTime(s.LastAttempt, "never")},
		{"Last success", formatTime(s.LastSuccess, "never")},
		{"Last change", formatTime(s.LastChange, "never")},
		{"Last error", orText(oneLine(s.LastError), "none")},
		{"Consecutive failures", strconv.Itoa(s.ConsecutiveFailures)},
		{"Next refresh", formatTime(s.NextRefresh, "not scheduled")},
	}
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	for _, row := range rows {
		fmt.Fprintf(tw, "%s\t: %s\n", row[0], row[1])
	}
	return tw.Flush()
}
