package policystore

import (
	"context"
	"log/slog"
	"sync"

	"trueportai/services/gateway/internal/policy"
)

// Snapshot holds one compiled rule set per tenant and env. Get does no I/O.
type Snapshot struct {
	log  *slog.Logger
	mu   sync.RWMutex
	sets map[string]*policy.Set // tenant/env
}

// NewSnapshot returns an empty snapshot.
func NewSnapshot(log *slog.Logger) *Snapshot {
	return &Snapshot{log: log, sets: map[string]*policy.Set{}}
}

func key(tenant, env string) string { return tenant + "/" + env }

// Get returns the compiled rules of a tenant's env (nil: none).
func (s *Snapshot) Get(tenant, env string) *policy.Set {
	s.mu.RLock()
	set := s.sets[key(tenant, env)]
	s.mu.RUnlock()
	return set
}

// compile groups rows by tenant/env and compiles each group. A rule that no
// longer compiles (validated on write, so only after an engine change) is
// skipped and logged rather than disabling the tenant's other rules.
func (s *Snapshot) compile(rows []*Row) map[string]*policy.Set {
	groups := map[string][]policy.Rule{}
	for _, r := range rows {
		k := key(r.TenantID, r.Env)
		groups[k] = append(groups[k], r.Rule)
	}
	out := make(map[string]*policy.Set, len(groups))
	for k, rules := range groups {
		set, err := policy.Compile(rules)
		if err != nil {
			s.log.Error("policy compile failed; compiling rules one by one", "scope", k, "err", err)
			var ok []policy.Rule
			for _, r := range rules {
				if _, err := policy.Compile([]policy.Rule{r}); err == nil {
					ok = append(ok, r)
				}
			}
			set, _ = policy.Compile(ok)
		}
		out[k] = set
	}
	return out
}

// ReplaceAll swaps in every tenant's rules.
func (s *Snapshot) ReplaceAll(rows []*Row) {
	sets := s.compile(rows)
	s.mu.Lock()
	s.sets = sets
	s.mu.Unlock()
}

// ReplaceTenant swaps in one tenant's rules (all envs).
func (s *Snapshot) ReplaceTenant(tenant string, rows []*Row) {
	sets := s.compile(rows)
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.sets {
		if len(k) > len(tenant) && k[:len(tenant)+1] == tenant+"/" {
			delete(s.sets, k)
		}
	}
	for k, v := range sets {
		s.sets[k] = v
	}
}

// Loader reads rules.
type Loader interface {
	ForTenant(ctx context.Context, tenantID string) ([]*Row, error)
}

// Reload refreshes one tenant from the store.
func (s *Snapshot) Reload(ctx context.Context, l Loader, tenant string) error {
	rows, err := l.ForTenant(ctx, tenant)
	if err != nil {
		return err
	}
	s.ReplaceTenant(tenant, rows)
	return nil
}
