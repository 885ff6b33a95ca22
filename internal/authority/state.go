package authority

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"time"
)

const (
	// StateFileName is the name of the schedule file inside BuiltinConfig.Dir.
	StateFileName = "state.json"
	stateVersion  = 1
	keyFileSuffix = ".key"
	caKeyPrefix   = "x509-ca-"
	jwtKeyPrefix  = "jwt-"
)

// keyStatus is the stage of a key in its rotation.
type keyStatus string

const (
	// statusPrepared: published, signs nothing yet.
	statusPrepared keyStatus = "prepared"
	// statusActive: published and signing.
	statusActive keyStatus = "active"
	// statusRetired: signs nothing, published until its last SVID expires.
	statusRetired keyStatus = "retired"
)

// keyRecord is the schedule of one key, common to CA and JWT keys.
type keyRecord struct {
	Status keyStatus `json:"status"`
	// Genesis marks the first key of a new trust domain, which is active without
	// having been published for PublishLead because there is nothing to rotate from.
	Genesis     bool      `json:"genesis,omitzero"`
	PublishedAt time.Time `json:"published_at"`
	// ActivateAt is the earliest time a prepared key may start signing.
	ActivateAt    time.Time `json:"activate_at"`
	ActivatedAt   time.Time `json:"activated_at,omitzero"`
	DeactivatedAt time.Time `json:"deactivated_at,omitzero"`
}

type caRecord struct {
	// Serial is the certificate serial number in lowercase hex; it names the key file.
	Serial string `json:"serial"`
	// Certificate is the DER of the self-signed CA certificate.
	Certificate []byte `json:"certificate"`
	keyRecord
}

type jwtRecord struct {
	KeyID string `json:"kid"`
	// MaxSVIDTTLSeconds is the longest JWT-SVID lifetime allowed while this key
	// was active. It decides how long the key stays published once retired, even
	// when JWTSVIDMaxTTL has been lowered since.
	MaxSVIDTTLSeconds int64 `json:"max_svid_ttl_seconds,omitzero"`
	keyRecord
}

type stateFile struct {
	Version     int         `json:"version"`
	TrustDomain string      `json:"trust_domain"`
	CAs         []caRecord  `json:"x509_authorities"`
	JWTKeys     []jwtRecord `json:"jwt_authorities"`
}

var (
	serialPattern = regexp.MustCompile(`^[0-9a-f]{1,40}$`)
	kidPattern    = regexp.MustCompile(`^[A-Za-z0-9_-]{16,64}$`)
)

func caKeyFileName(serial string) string { return caKeyPrefix + serial + keyFileSuffix }
func jwtKeyFileName(kid string) string   { return jwtKeyPrefix + kid + keyFileSuffix }

// errNoState reports that Dir has no state file yet, so the trust domain is new.
var errNoState = errors.New("authority: no state file")

// corruptStateError explains a state file that cannot be used and what the
// operator can do about it.
func corruptStateError(path string, cause error) error {
	return fmt.Errorf("authority: state file %s is invalid: %w; restore it from backup, or "+
		"move the whole directory away to start the trust domain with new keys (peers then "+
		"need the new bundle before they trust new SVIDs)", path, cause)
}

func loadState(dir string) (*stateFile, error) {
	path := filepath.Join(dir, StateFileName)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errNoState
	}
	if err != nil {
		return nil, fmt.Errorf("authority: read state file %s: %w", path, err)
	}
	var st stateFile
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, corruptStateError(path, err)
	}
	if err := st.check(); err != nil {
		return nil, corruptStateError(path, err)
	}
	return &st, nil
}

func saveState(dir string, st *stateFile) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("authority: encode state: %w", err)
	}
	return writeFileAtomic(dir, StateFileName, append(data, '\n'), keyFileMode)
}

// check verifies the invariants that the schedule code relies on: known
// version, safe key names, at most one prepared and one active key per kind.
func (st *stateFile) check() error {
	if st.Version != stateVersion {
		return fmt.Errorf("version %d is not supported (expected %d)", st.Version, stateVersion)
	}
	seen := map[string]bool{}
	var records []keyRecord
	for _, ca := range st.CAs {
		if !serialPattern.MatchString(ca.Serial) || seen[ca.Serial] {
			return fmt.Errorf("CA serial %q is malformed or repeated", ca.Serial)
		}
		seen[ca.Serial] = true
		records = append(records, ca.keyRecord)
	}
	if err := checkStatuses("X.509 CA", records); err != nil {
		return err
	}
	records = records[:0]
	for _, k := range st.JWTKeys {
		if !kidPattern.MatchString(k.KeyID) || seen[k.KeyID] {
			return fmt.Errorf("JWT key ID %q is malformed or repeated", k.KeyID)
		}
		seen[k.KeyID] = true
		records = append(records, k.keyRecord)
	}
	return checkStatuses("JWT key", records)
}

func checkStatuses(kind string, records []keyRecord) error {
	count := map[keyStatus]int{}
	for _, r := range records {
		switch r.Status {
		case statusPrepared, statusActive, statusRetired:
			count[r.Status]++
		default:
			return fmt.Errorf("%s status %q is unknown", kind, r.Status)
		}
	}
	if count[statusPrepared] > 1 || count[statusActive] > 1 {
		return fmt.Errorf("%s records list %d prepared and %d active keys; at most one of each "+
			"is allowed", kind, count[statusPrepared], count[statusActive])
	}
	return nil
}
