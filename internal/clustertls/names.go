package clustertls

import (
	"fmt"
	"net"
	"strings"
)

const (
	// ClusterDomain is the DNS suffix of every name in a node certificate. It is
	// not resolved: the names only identify cluster members during TLS
	// verification.
	ClusterDomain = "bundlex.cluster"
	// ServerName is the DNS name that every node certificate carries and that
	// both ends of a Raft connection verify.
	ServerName = "server." + ClusterDomain

	// maxLabelLength and maxDNSNameLength are the limits of RFC 1035 section
	// 2.3.4 (63 bytes per label, 253 bytes for a name written without the
	// trailing dot).
	maxLabelLength   = 63
	maxDNSNameLength = 253
)

// NodeDNSName returns the DNS name that identifies node in its certificate,
// <node>.bundlex.cluster, in lower case because DNS names compare
// case-insensitively (RFC 4343).
func NodeDNSName(node string) string {
	return strings.ToLower(node) + "." + ClusterDomain
}

// validateNodeName rejects a node name that is not a single DNS label, because
// it becomes the first label of NodeDNSName and the base of the file names.
func validateNodeName(node string) error {
	if node == "" {
		return fmt.Errorf("clustertls: node name is missing; use the node's Raft " +
			"name, such as node-1")
	}
	if err := checkLabel(node); err != nil {
		return fmt.Errorf("clustertls: invalid node name %q: %w; use only letters, "+
			"digits and inner hyphens, at most %d characters", node, err, maxLabelLength)
	}
	return nil
}

// validateDNSName rejects an extra DNS name for a node certificate unless it is a
// host name of RFC 1123 labels. Wildcards are rejected because a node
// certificate names one host.
func validateDNSName(name string) error {
	if name == "" {
		return fmt.Errorf("clustertls: DNS name is empty; remove it from the list")
	}
	if len(name) > maxDNSNameLength {
		return fmt.Errorf("clustertls: invalid DNS name %q: longer than %d characters",
			name, maxDNSNameLength)
	}
	for label := range strings.SplitSeq(name, ".") {
		if err := checkLabel(label); err != nil {
			return fmt.Errorf("clustertls: invalid DNS name %q: %w; use dot-separated "+
				"labels of letters, digits and inner hyphens", name, err)
		}
	}
	return nil
}

func validateIP(ip net.IP) error {
	if ip.To4() == nil && ip.To16() == nil {
		return fmt.Errorf("clustertls: invalid IP address %q: not 4 or 16 bytes long",
			[]byte(ip))
	}
	if ip.IsUnspecified() {
		return fmt.Errorf("clustertls: invalid IP address %s: an unspecified address "+
			"names no host; give the address that peers dial", ip)
	}
	return nil
}

// checkLabel applies RFC 1123 section 2.1 to one DNS label.
func checkLabel(label string) error {
	switch {
	case label == "":
		return fmt.Errorf("empty label")
	case len(label) > maxLabelLength:
		return fmt.Errorf("label %q is longer than %d characters", label, maxLabelLength)
	case label[0] == '-' || label[len(label)-1] == '-':
		return fmt.Errorf("label %q starts or ends with a hyphen", label)
	}
	for _, r := range label {
		isLetter := (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z')
		if !isLetter && (r < '0' || r > '9') && r != '-' {
			return fmt.Errorf("label %q contains %q", label, r)
		}
	}
	return nil
}
