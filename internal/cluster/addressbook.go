package cluster

import (
	"fmt"
	"sync"

	hraft "github.com/hashicorp/raft"
)

// AddressBook contains the Raft address of each server, by name, as last
// advertised in gossip, or as in the Raft configuration for a server gossip has not
// reported. It implements hashicorp/raft's ServerAddressProvider: give the same
// book to raft.Config.ServerAddressProvider and Config.AddressBook, and the Raft
// transport dials a server where it is now. Without it, servers that all restart
// with new addresses keep dialing the old ones and never elect a leader, which
// the leader's address update cannot fix.
type AddressBook struct {
	mu sync.RWMutex
	// addresses maps a server name to its address and whether gossip sent it.
	addresses map[string]bookEntry
}

type bookEntry struct {
	address    string
	fromGossip bool
}

// NewAddressBook returns an empty address book.
func NewAddressBook() *AddressBook {
	return &AddressBook{addresses: map[string]bookEntry{}}
}

// ServerAddr returns the address of the server with Raft ID id. The error makes
// hashicorp/raft fall back to the address in its configuration.
func (b *AddressBook) ServerAddr(id hraft.ServerID) (hraft.ServerAddress, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	entry, ok := b.addresses[string(id)]
	if !ok {
		return "", fmt.Errorf("cluster: no Raft address is known for server %s yet", id)
	}
	return hraft.ServerAddress(entry.address), nil
}

// setFromGossip records the address a server advertised in gossip, which is newer
// than any address in the Raft configuration.
func (b *AddressBook) setFromGossip(name, address string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.addresses[name] = bookEntry{address: address, fromGossip: true}
}

// setFromConfig records the configured addresses of servers that gossip has not
// reported yet.
func (b *AddressBook) setFromConfig(servers map[string]hraft.Server) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for name, server := range servers {
		if entry, ok := b.addresses[name]; !ok || !entry.fromGossip {
			b.addresses[name] = bookEntry{address: string(server.Address)}
		}
	}
}
