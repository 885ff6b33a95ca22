package authority

import (
	"crypto"
	"crypto/x509"
	"errors"
	"log/slog"
	"path/filepath"
	"sync"
	"time"
)

// Builtin is the node's own CA and JWT signing keys for its trust domain,
// with their rotation schedule. It is safe for concurrent use.
//
// NOTE: a Builtin assumes it is the only user of its directory. Two processes
// opening the same directory would each keep their own schedule in memory and
// overwrite each other's state file.
type Builtin struct {
	cfg BuiltinConfig
	log *slog.Logger

	mu   sync.RWMutex
	cas  []*caKey  // in publication order
	jwts []*jwtKey // in publication order
}

// PublicKeys is the published part of the schedule: prepared, active and
// retired keys that some valid SVID may still need. X509Authorities is in
// publication order, oldest first. Callers must not modify the certificates.
type PublicKeys struct {
	X509Authorities []*x509.Certificate
	JWTAuthorities  map[string]crypto.PublicKey
}

// OpenBuiltin loads the keys and schedule stored in cfg.Dir, or creates the
// first CA and JWT key of a new trust domain when the directory has no state
// file. Call Tick afterwards to catch up with time spent stopped.
func OpenBuiltin(cfg BuiltinConfig) (*Builtin, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := prepareDir(cfg.Dir); err != nil {
		return nil, err
	}

	b := &Builtin{cfg: cfg, log: cfg.Logger.With("trust_domain", cfg.TrustDomain.Name())}
	st, err := loadState(cfg.Dir)
	switch {
	case errors.Is(err, errNoState):
		err = checkNoKeyFiles(cfg.Dir)
		if err == nil {
			err = b.createGenesis()
		}
	case err == nil:
		err = b.restore(st)
	}
	if err != nil {
		return nil, err
	}

	referenced := map[string]bool{StateFileName: true}
	for _, c := range b.cas {
		referenced[c.fileName()] = true
	}
	for _, k := range b.jwts {
		referenced[k.fileName()] = true
	}
	removed, err := removeUnreferenced(cfg.Dir, referenced)
	if len(removed) > 0 {
		b.log.Info("removed files left by an interrupted write", "dir", cfg.Dir, "files", removed)
	}
	if err != nil {
		return nil, err
	}

	b.log.Info("opened built-in authority", "dir", cfg.Dir, "x509_authorities", len(b.cas),
		"jwt_authorities", len(b.jwts))
	return b, nil
}

// createGenesis creates the first CA and JWT key and activates them at once.
// This is the one exception to publishing a key for PublishLead before use
// (SPIFFE Federation 4.1): a new trust domain has no older key to sign with
// meanwhile, and no peer can hold SVIDs of it yet.
func (b *Builtin) createGenesis() error {
	now := b.now()
	ca, err := newCAKey(b.cfg.TrustDomain, now, b.cfg.CATTL)
	if err != nil {
		return err
	}
	jwt, err := newJWTKey(func(string) bool { return false })
	if err != nil {
		return err
	}
	genesis := keyRecord{Status: statusActive, Genesis: true, PublishedAt: now,
		ActivateAt: now, ActivatedAt: now}
	ca.rec.keyRecord = genesis
	jwt.rec.keyRecord = genesis
	jwt.onActivate(&b.cfg)
	if err := writeKeyFile(b.cfg.Dir, ca.fileName(), ca.key); err != nil {
		return err
	}
	if err := writeKeyFile(b.cfg.Dir, jwt.fileName(), jwt.key); err != nil {
		return err
	}
	if err := saveState(b.cfg.Dir, b.stateOf([]*caKey{ca}, []*jwtKey{jwt})); err != nil {
		return err
	}
	b.cas, b.jwts = []*caKey{ca}, []*jwtKey{jwt}
	b.log.Info("created first keys of a new trust domain; they sign at once because there is "+
		"no older key to rotate from", "ca_serial", ca.rec.Serial, "kid", jwt.rec.KeyID)
	return nil
}

func (b *Builtin) stateOf(cas []*caKey, jwts []*jwtKey) *stateFile {
	st := &stateFile{Version: stateVersion, TrustDomain: b.cfg.TrustDomain.Name(),
		CAs: []caRecord{}, JWTKeys: []jwtRecord{}}
	for _, c := range cas {
		st.CAs = append(st.CAs, c.rec)
	}
	for _, k := range jwts {
		st.JWTKeys = append(st.JWTKeys, k.rec)
	}
	return st
}

// now returns the injected clock without a monotonic reading, so that the
// times stored in the state file compare the same way after a restart.
func (b *Builtin) now() time.Time { return b.cfg.Now().Round(0) }

// PublicKeys returns every published key.
func (b *Builtin) PublicKeys() PublicKeys {
	b.mu.RLock()
	defer b.mu.RUnlock()
	keys := PublicKeys{JWTAuthorities: make(map[string]crypto.PublicKey, len(b.jwts))}
	for _, c := range b.cas {
		keys.X509Authorities = append(keys.X509Authorities, c.cert)
	}
	for _, k := range b.jwts {
		keys.JWTAuthorities[k.rec.KeyID] = &k.key.PublicKey
	}
	return keys
}

// Tick advances the schedule to Now(): it prepares, activates and retires
// keys and removes those no SVID needs any more. changed reports that
// PublicKeys changed, so the caller publishes a new bundle.
func (b *Builtin) Tick() (changed bool, err error) {
	return b.update(func(now time.Time, cas *rotation[*caKey], jwts *rotation[*jwtKey]) error {
		if err := cas.advance(now); err != nil {
			return err
		}
		return jwts.advance(now)
	})
}

// Rotate prepares a new CA and JWT key now, replacing a prepared key that has
// not signed anything yet. The new keys are published at once and start
// signing PublishLead later, at the first Tick after that time.
func (b *Builtin) Rotate() error {
	_, err := b.update(func(now time.Time, cas *rotation[*caKey], jwts *rotation[*jwtKey]) error {
		if err := cas.replacePrepared(now); err != nil {
			return err
		}
		return jwts.replacePrepared(now)
	})
	return err
}

// NextEvent returns when Tick next has something to do. The time may be in
// the past, in which case the caller should call Tick at once.
func (b *Builtin) NextEvent() time.Time {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.nextEventLocked(b.now())
}

func (b *Builtin) nextEventLocked(now time.Time) time.Time {
	caTime := b.caRotation().nextEvent(now)
	jwtTime := b.jwtRotation().nextEvent(now)
	if caTime.IsZero() || (!jwtTime.IsZero() && jwtTime.Before(caTime)) {
		return jwtTime
	}
	return caTime
}

// caRotation and jwtRotation copy the live keys; callers hold b.mu.
func (b *Builtin) caRotation() *rotation[*caKey] {
	return newRotation("x509", &b.cfg, b.cas, func(now time.Time) (*caKey, error) {
		return newCAKey(b.cfg.TrustDomain, now, b.cfg.CATTL)
	})
}

func (b *Builtin) jwtRotation() *rotation[*jwtKey] {
	var r *rotation[*jwtKey]
	r = newRotation("jwt", &b.cfg, b.jwts, func(time.Time) (*jwtKey, error) {
		return newJWTKey(func(kid string) bool {
			for _, k := range r.entries {
				if k.rec.KeyID == kid {
					return true
				}
			}
			return false
		})
	})
	return r
}

// update runs step on copies of the keys, writes new key files and the state
// file, and only then makes the copies live and deletes the key files of
// removed keys. A failed write leaves the live schedule unchanged.
func (b *Builtin) update(step func(time.Time, *rotation[*caKey], *rotation[*jwtKey]) error) (
	bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	cas, jwts := b.caRotation(), b.jwtRotation()
	if err := step(b.now(), cas, jwts); err != nil {
		return false, err
	}
	if !cas.stateChanged && !jwts.stateChanged {
		return false, nil
	}
	if err := b.writeNewKeys(cas.entries, jwts.entries); err != nil {
		return false, err
	}
	if err := saveState(b.cfg.Dir, b.stateOf(cas.entries, jwts.entries)); err != nil {
		return false, err
	}
	b.cas, b.jwts = cas.entries, jwts.entries
	for _, ev := range append(cas.events, jwts.events...) {
		b.log.Info(ev.message, ev.attrs...)
	}
	b.deleteKeyFiles(append(cas.dropped, jwts.dropped...))
	return cas.publicChanged || jwts.publicChanged, nil
}

// writeNewKeys writes the key file of every key that is not live yet.
func (b *Builtin) writeNewKeys(cas []*caKey, jwts []*jwtKey) error {
	live := map[string]bool{}
	for _, c := range b.cas {
		live[c.fileName()] = true
	}
	for _, k := range b.jwts {
		live[k.fileName()] = true
	}
	for _, c := range cas {
		if !live[c.fileName()] {
			if err := writeKeyFile(b.cfg.Dir, c.fileName(), c.key); err != nil {
				return err
			}
		}
	}
	for _, k := range jwts {
		if !live[k.fileName()] {
			if err := writeKeyFile(b.cfg.Dir, k.fileName(), k.key); err != nil {
				return err
			}
		}
	}
	return nil
}

// deleteKeyFiles removes key files the saved state no longer lists. A failure
// only leaves a file behind, which the next OpenBuiltin removes, so it is logged.
func (b *Builtin) deleteKeyFiles(names []string) {
	for _, name := range names {
		path := filepath.Join(b.cfg.Dir, name)
		if err := removeFile(path); err != nil {
			b.log.Warn("failed to delete key file of a removed key; the next start retries",
				"path", path, "error", err)
		}
	}
}
