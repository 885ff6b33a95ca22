package workload

import "sync"

// MemorySource is a Source that holds one snapshot in memory and notifies
// subscribers when Set replaces it. It serves tests and bundles that never
// change after start-up.
type MemorySource struct {
	mu          sync.Mutex
	snapshot    *Snapshot
	nextID      int
	subscribers map[int]chan struct{}
}

// NewMemorySource returns a source that starts with snapshot, which may be nil.
func NewMemorySource(snapshot *Snapshot) *MemorySource {
	return &MemorySource{snapshot: snapshot, subscribers: make(map[int]chan struct{})}
}

// Snapshot returns the snapshot last passed to Set or NewMemorySource.
func (m *MemorySource) Snapshot() *Snapshot {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.snapshot
}

// Set replaces the snapshot and notifies every subscriber. A subscriber that has
// not read its previous notification gets no second one, so changes coalesce.
func (m *MemorySource) Set(snapshot *Snapshot) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.snapshot = snapshot
	for _, ch := range m.subscribers {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Subscribe registers a subscriber. The returned function removes it and may be
// called more than once.
func (m *MemorySource) Subscribe() (<-chan struct{}, func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	id := m.nextID
	m.nextID++
	ch := make(chan struct{}, 1)
	m.subscribers[id] = ch
	return ch, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		delete(m.subscribers, id)
	}
}
