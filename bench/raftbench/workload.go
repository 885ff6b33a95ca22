package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net/url"
	"strconv"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/bundlex/bundlex/bundle"
	"github.com/bundlex/bundlex/raft"
)

// The raw baseline writes entries encoded by raft.EncodeCommand, so both systems
// replicate entries of the same size, and checkEntries compares them with the
// entries that a bundlex store writes.
const (
	firstSequence            = 1_000_000_000
	sequencePlaceholderValue = 9_999_999_999
)

// workloadKind is the kind of a write.
type workloadKind string

const (
	bundleWrites       workloadKind = "bundle"
	relationshipWrites workloadKind = "relationship"
)

// baseTime is a whole second, so that every time in a command encodes with the same
// number of characters and every entry of one kind has the same size.
var baseTime = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)

// workload builds the commands of the writers. Writer w writes the records of its
// own trust domain, so concurrent writers never race on one peer's spiffe_sequence,
// which the state machine would reject as a rollback. Each writer goroutine touches
// only its own counter.
type workload struct {
	// docPrefix and docSuffix surround the spiffe_sequence digits of the document.
	docPrefix, docSuffix []byte
	sequences            []uint64
}

// newWorkload returns a workload for up to writers concurrent writers.
func newWorkload(writers int) (*workload, error) {
	prefix, suffix, err := documentTemplate()
	if err != nil {
		return nil, err
	}
	wl := &workload{docPrefix: prefix, docSuffix: suffix, sequences: make([]uint64, writers)}
	for i := range wl.sequences {
		wl.sequences[i] = firstSequence
	}
	return wl, nil
}

// maxWriters is the highest number of writers, the most that trustDomain names with
// a fixed width.
const maxWriters = 999

// trustDomain returns the peer trust domain of writer w. The fixed width keeps the
// entry size the same for every writer.
func trustDomain(w int) string { return fmt.Sprintf("peer-%03d.example.org", w) }

// document returns the bundle document with spiffe_sequence set to sequence, which
// must have ten digits.
func (wl *workload) document(sequence uint64) []byte {
	doc := make([]byte, 0, len(wl.docPrefix)+10+len(wl.docSuffix))
	doc = append(doc, wl.docPrefix...)
	doc = strconv.AppendUint(doc, sequence, 10)
	return append(doc, wl.docSuffix...)
}

// documentSize returns the size of one bundle document in bytes.
func (wl *workload) documentSize() int { return len(wl.document(firstSequence)) }

// next returns the next command of writer w: a fetched bundle with its peer status,
// as the poller writes it, or a relationship update, as the admin API writes it.
func (wl *workload) next(kind workloadKind, w int) raft.Command {
	wl.sequences[w]++
	sequence := wl.sequences[w]
	td := trustDomain(w)
	at := baseTime.Add(time.Duration(sequence-firstSequence) * time.Second)
	if kind == relationshipWrites {
		rel := relationship(td)
		rel.UpdatedAt = at
		return raft.UpdateRelationship{Relationship: rel}
	}
	return bundleCommand(td, wl.document(sequence), sequence, at)
}

func bundleCommand(td string, doc []byte, sequence uint64, at time.Time) raft.Command {
	return raft.PutFederatedBundle{
		Record: raft.BundleRecord{
			TrustDomain: td,
			Document:    doc,
			Sequence:    sequence,
			HasSequence: true,
			Source:      raft.SourceFetched,
			UpdatedAt:   at,
		},
		Status: &raft.PeerStatus{
			TrustDomain: td,
			LastAttempt: at,
			LastSuccess: at,
			LastChange:  at,
			// A quarter of the document's 300 s refresh hint.
			NextRefresh: at.Add(75 * time.Second),
			X509Keys:    2,
			JWTKeys:     1,
		},
	}
}

// relationship returns an https_spiffe relationship with a SPIRE Server endpoint.
func relationship(td string) raft.Relationship {
	return raft.Relationship{
		TrustDomain:       td,
		BundleEndpointURL: "https://spire." + td + ":8443/",
		Profile:           "https_spiffe",
		EndpointSPIFFEID:  "spiffe://" + td + "/spire/server",
		AllowedIDPrefixes: []string{"spiffe://" + td + "/ns/payments/"},
		CreatedAt:         baseTime,
		UpdatedAt:         baseTime,
	}
}

// encodeEntry returns the log entry that bundlex writes for cmd, in the layout of
// raft/codec.go. Commands built by workload.next pass the store's validation
// unchanged, so the store encodes the same value.
func encodeEntry(cmd raft.Command) ([]byte, error) {
	return raft.EncodeCommand(cmd)
}

// documentTemplate builds a bundle with two X.509 authorities, as during a CA
// rotation, and one JWT key, all EC P-256: about 2 KiB of canonical JSON. It
// splits the document around the spiffe_sequence value.
func documentTemplate() (prefix, suffix []byte, err error) {
	td := spiffeid.RequireTrustDomainFromString("peer.example.org")
	b := bundle.New(td)
	b.HasSequence = true
	b.Sequence = sequencePlaceholderValue
	b.RefreshHint = 5 * time.Minute

	for i := range 2 {
		cert, err := newCACertificate(td, i)
		if err != nil {
			return nil, nil, err
		}
		b.X509Authorities = append(b.X509Authorities, cert)
	}
	jwtKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("raftbench: generate a JWT key: %w", err)
	}
	b.JWTAuthorities = []bundle.JWTAuthority{{KeyID: "K6xuvUjbkXhyzBhExcFoCRkyldIeQ5cK",
		PublicKey: jwtKey.Public()}}

	doc, err := bundle.Marshal(b)
	if err != nil {
		return nil, nil, fmt.Errorf("raftbench: encode the benchmark bundle: %w", err)
	}
	if _, warnings, err := bundle.Parse(td, doc); err != nil || len(warnings) > 0 {
		return nil, nil, fmt.Errorf("raftbench: the benchmark bundle does not parse "+
			"cleanly: error %v, warnings %v", err, warnings)
	}
	placeholder := []byte(strconv.FormatUint(sequencePlaceholderValue, 10))
	before, after, found := bytes.Cut(doc, placeholder)
	if !found {
		return nil, nil, fmt.Errorf("raftbench: spiffe_sequence %s not found in the "+
			"benchmark bundle", placeholder)
	}
	return before, after, nil
}

func newCACertificate(td spiffeid.TrustDomain, serial int) (*x509.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("raftbench: generate a CA key: %w", err)
	}
	notBefore := baseTime.Add(time.Duration(serial) * 12 * time.Hour)
	template := &x509.Certificate{
		SerialNumber: big.NewInt(int64(serial) + 1),
		Subject: pkix.Name{Country: []string{"US"}, Organization: []string{"SPIFFE"},
			SerialNumber: strconv.Itoa(serial + 1)},
		URIs:                  []*url.URL{td.ID().URL()},
		NotBefore:             notBefore,
		NotAfter:              notBefore.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("raftbench: create CA certificate %d: %w", serial, err)
	}
	return x509.ParseCertificate(der)
}
