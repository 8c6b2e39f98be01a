package keys

import (
	"context"
	"sync"
)

// Cache maps key hashes to keys. Reads are lock-shared and allocation-free.
type Cache struct {
	mu     sync.RWMutex
	byHash map[[32]byte]*Key
	byID   map[string]*Key
}

// NewCache returns an empty cache.
func NewCache() *Cache {
	return &Cache{byHash: map[[32]byte]*Key{}, byID: map[string]*Key{}}
}

// Lookup finds a key by its hash.
func (c *Cache) Lookup(h [32]byte) (*Key, bool) {
	c.mu.RLock()
	k, ok := c.byHash[h]
	c.mu.RUnlock()
	return k, ok
}

// Put inserts or replaces a key (a stored *Key is never mutated afterwards).
func (c *Cache) Put(k *Key) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.byID[k.ID]; ok {
		delete(c.byHash, old.Hash)
	}
	c.byID[k.ID] = k
	c.byHash[k.Hash] = k
}

// Remove drops a key by id.
func (c *Cache) Remove(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.byID[id]; ok {
		delete(c.byHash, old.Hash)
		delete(c.byID, id)
	}
}

// Replace swaps the whole content (periodic full reload).
func (c *Cache) Replace(all []*Key) {
	byHash := make(map[[32]byte]*Key, len(all))
	byID := make(map[string]*Key, len(all))
	for _, k := range all {
		byHash[k.Hash], byID[k.ID] = k, k
	}
	c.mu.Lock()
	c.byHash, c.byID = byHash, byID
	c.mu.Unlock()
}

// TenantIDs lists the tenants that own cached keys.
func (c *Cache) TenantIDs() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	seen := map[string]bool{}
	var out []string
	for _, k := range c.byID {
		if !seen[k.TenantID] {
			seen[k.TenantID] = true
			out = append(out, k.TenantID)
		}
	}
	return out
}

// Loader reads keys from the database.
type Loader interface {
	All(ctx context.Context) ([]*Key, error)
	ByID(ctx context.Context, id string) (*Key, error)
}

// Refresh reloads one key (after a change event); a deleted key is removed.
func (c *Cache) Refresh(ctx context.Context, l Loader, id string) error {
	k, err := l.ByID(ctx, id)
	if err == ErrNotFound {
		c.Remove(id)
		return nil
	}
	if err != nil {
		return err
	}
	c.Put(k)
	return nil
}
