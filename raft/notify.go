package raft

import "sync"

// broadcaster fans values out to subscribers. Each subscriber has a channel with
// room for one value, and a new value replaces one the subscriber has not read yet,
// so a slow subscriber never blocks the publisher and always reads the latest value.
type broadcaster[T any] struct {
	mu     sync.Mutex
	subs   map[uint64]chan T
	nextID uint64
	closed bool
}

func newBroadcaster[T any]() *broadcaster[T] {
	return &broadcaster[T]{subs: map[uint64]chan T{}}
}

// subscribe returns a channel of values and the function that ends the
// subscription. The channel is closed when either is called. A non-nil initial
// function supplies the first value, read under the lock so that no later publish
// can be overtaken by it.
func (b *broadcaster[T]) subscribe(initial func() T) (<-chan T, func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	ch := make(chan T, 1)
	if b.closed {
		close(ch)
		return ch, func() {}
	}
	id := b.nextID
	b.nextID++
	b.subs[id] = ch
	if initial != nil {
		ch <- initial()
	}
	cancel := func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if sub, ok := b.subs[id]; ok {
			delete(b.subs, id)
			close(sub)
		}
	}
	return ch, cancel
}

func (b *broadcaster[T]) publish(value T) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, ch := range b.subs {
		// Only the publisher sends, under the lock, so after the drain the send
		// always finds room.
		select {
		case <-ch:
		default:
		}
		ch <- value
	}
}

// close ends every subscription, so that readers ranging over a channel stop.
func (b *broadcaster[T]) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for id, ch := range b.subs {
		delete(b.subs, id)
		close(ch)
	}
}
