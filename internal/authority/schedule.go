package authority

import (
	"time"
)

// rotatable is a key kind in the schedule: *caKey or *jwtKey.
type rotatable[T any] interface {
	clone() T
	schedule() *keyRecord
	fileName() string
	// signingEnd is when an active key is due to hand over to the next one.
	signingEnd(cfg *BuiltinConfig) time.Time
	// publishedUntil is when a retired key may leave the bundle.
	publishedUntil() time.Time
	// expiry is when the key can no longer sign at all; zero means never.
	expiry() time.Time
	onActivate(cfg *BuiltinConfig)
	logAttrs() []any
}

// logEvent is a schedule change, logged only once the new state is saved.
type logEvent struct {
	message string
	attrs   []any
}

// rotation is a copy of the keys of one kind that a schedule step modifies.
// The caller saves it and only then replaces the live keys, so a failed save
// changes nothing.
type rotation[T rotatable[T]] struct {
	kind    string
	cfg     *BuiltinConfig
	newKey  func(now time.Time) (T, error)
	entries []T
	// publicChanged reports that the set of published keys changed.
	publicChanged bool
	// stateChanged reports that anything in the state file changed.
	stateChanged bool
	// dropped lists key files to delete after the state is saved.
	dropped []string
	events  []logEvent
}

func newRotation[T rotatable[T]](kind string, cfg *BuiltinConfig, entries []T,
	newKey func(time.Time) (T, error)) *rotation[T] {
	copied := make([]T, len(entries))
	for i, e := range entries {
		copied[i] = e.clone()
	}
	return &rotation[T]{kind: kind, cfg: cfg, newKey: newKey, entries: copied}
}

func (r *rotation[T]) find(status keyStatus) (T, bool) {
	for _, e := range r.entries {
		if e.schedule().Status == status {
			return e, true
		}
	}
	var zero T
	return zero, false
}

func (r *rotation[T]) record(message string, e T, extra ...any) {
	attrs := append([]any{"key_kind", r.kind}, e.logAttrs()...)
	r.events = append(r.events, logEvent{message: message, attrs: append(attrs, extra...)})
}

// advance brings the keys of this kind up to now, in the order that keeps
// the invariants: remove what ended, activate the prepared key once due,
// then prepare a successor if the active key nears its signing end.
func (r *rotation[T]) advance(now time.Time) error {
	r.dropEnded(now)
	r.activateDue(now)
	// After a long downtime the key retired just now may have ended as well.
	r.dropEnded(now)
	return r.prepareIfDue(now)
}

// dropEnded removes retired keys whose last SVID has expired and keys of
// any status that can no longer sign because they have expired.
func (r *rotation[T]) dropEnded(now time.Time) {
	kept := r.entries[:0]
	for _, e := range r.entries {
		st := e.schedule()
		retiredEnded := st.Status == statusRetired && !now.Before(e.publishedUntil())
		expired := !e.expiry().IsZero() && !now.Before(e.expiry())
		if !retiredEnded && !expired {
			kept = append(kept, e)
			continue
		}
		if st.Status == statusActive {
			// Only a Tick missing for longer than the whole rotation lead gets here.
			r.record("active key expired before a successor could take over; signing "+
				"fails until the next key is active", e)
		} else {
			r.record("removed key from the bundle", e, "status", st.Status)
		}
		r.dropped = append(r.dropped, e.fileName())
		r.publicChanged = true
		r.stateChanged = true
	}
	r.entries = kept
}

func (r *rotation[T]) activateDue(now time.Time) {
	next, ok := r.find(statusPrepared)
	if !ok || now.Before(next.schedule().ActivateAt) {
		return
	}
	if old, ok := r.find(statusActive); ok {
		old.schedule().Status = statusRetired
		old.schedule().DeactivatedAt = now
		r.record("retired key; it stays published until its SVIDs expire", old,
			"published_until", old.publishedUntil())
	}
	next.schedule().Status = statusActive
	next.schedule().ActivatedAt = now
	next.onActivate(r.cfg)
	r.record("activated key", next, "published_at", next.schedule().PublishedAt)
	r.stateChanged = true
}

// prepareDue is when the successor of active is prepared: PublishLead plus
// PrepareMargin before the active key's signing end.
func (r *rotation[T]) prepareDue(active T) time.Time {
	lead := r.cfg.PublishLead + r.cfg.PrepareMargin
	return active.signingEnd(r.cfg).Add(-lead)
}

func (r *rotation[T]) prepareIfDue(now time.Time) error {
	if _, ok := r.find(statusPrepared); ok {
		return nil
	}
	// SPIFFE Federation 4.1: a new key is published for PublishLead before its
	// first use, so it never activates earlier than now + PublishLead.
	activateAt := now.Add(r.cfg.PublishLead)
	if active, ok := r.find(statusActive); ok {
		if now.Before(r.prepareDue(active)) {
			return nil
		}
		if end := active.signingEnd(r.cfg); end.After(activateAt) {
			activateAt = end
		}
	}
	return r.prepare(now, activateAt)
}

// prepare adds a new published key that may sign from activateAt on.
func (r *rotation[T]) prepare(now, activateAt time.Time) error {
	e, err := r.newKey(now)
	if err != nil {
		return err
	}
	st := e.schedule()
	st.Status = statusPrepared
	st.PublishedAt = now
	st.ActivateAt = activateAt
	r.entries = append(r.entries, e)
	r.record("prepared key; it is published now and signs from activate_at", e,
		"activate_at", activateAt)
	r.publicChanged = true
	r.stateChanged = true
	return nil
}

// replacePrepared drops a prepared key, which has signed nothing and can
// leave the bundle at once, and prepares a new one for now + PublishLead.
func (r *rotation[T]) replacePrepared(now time.Time) error {
	if old, ok := r.find(statusPrepared); ok {
		r.record("discarded unused prepared key", old)
		r.dropped = append(r.dropped, old.fileName())
		kept := r.entries[:0]
		for _, e := range r.entries {
			if e.schedule().Status != statusPrepared {
				kept = append(kept, e)
			}
		}
		r.entries = kept
	}
	return r.prepare(now, now.Add(r.cfg.PublishLead))
}

// nextEvent returns when advance next has something to do.
func (r *rotation[T]) nextEvent(now time.Time) time.Time {
	var next time.Time
	consider := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	for _, e := range r.entries {
		st := e.schedule()
		consider(e.expiry())
		switch st.Status {
		case statusRetired:
			consider(e.publishedUntil())
		case statusPrepared:
			consider(st.ActivateAt)
		}
	}
	if _, ok := r.find(statusPrepared); !ok {
		if active, ok := r.find(statusActive); ok {
			consider(r.prepareDue(active))
		} else {
			consider(now)
		}
	}
	return next
}
