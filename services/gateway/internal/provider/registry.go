package provider

import (
	"fmt"
	"strings"
)

// Registry holds the providers the gateway serves. It is immutable.
type Registry struct {
	list   []Provider
	byName map[string]Provider
}

// NewRegistry checks that names and route prefixes are unique and that no
// prefix is a prefix of another (a route must name exactly one provider).
func NewRegistry(ps ...Provider) (*Registry, error) {
	r := &Registry{byName: make(map[string]Provider, len(ps))}
	for _, p := range ps {
		if p.Name() == "" || !strings.HasPrefix(p.Prefix(), RoutePrefix) || !strings.HasSuffix(p.Prefix(), "/") {
			return nil, fmt.Errorf("provider %q: bad name or route prefix %q", p.Name(), p.Prefix())
		}
		if _, dup := r.byName[p.Name()]; dup {
			return nil, fmt.Errorf("provider %q registered twice", p.Name())
		}
		for _, q := range r.list {
			if strings.HasPrefix(p.Prefix(), q.Prefix()) || strings.HasPrefix(q.Prefix(), p.Prefix()) {
				return nil, fmt.Errorf("providers %q and %q have overlapping route prefixes", p.Name(), q.Name())
			}
		}
		r.byName[p.Name()] = p
		r.list = append(r.list, p)
	}
	return r, nil
}

// Match finds the provider whose route prefix starts path and returns the
// rest of the path below it.
func (r *Registry) Match(path string) (p Provider, rest string, ok bool) {
	if !strings.HasPrefix(path, RoutePrefix) {
		return nil, "", false
	}
	for _, p := range r.list {
		if rest, ok := strings.CutPrefix(path, p.Prefix()); ok {
			return p, rest, true
		}
	}
	return nil, "", false
}

// IsProxyPath reports whether path belongs to a proxy route.
func (r *Registry) IsProxyPath(path string) bool {
	_, _, ok := r.Match(path)
	return ok
}

// Lookup finds a provider by name.
func (r *Registry) Lookup(name string) (Provider, bool) {
	p, ok := r.byName[name]
	return p, ok
}

// Names lists the providers' names in registration order.
func (r *Registry) Names() []string {
	out := make([]string, len(r.list))
	for i, p := range r.list {
		out[i] = p.Name()
	}
	return out
}

// All returns the providers in registration order.
func (r *Registry) All() []Provider { return append([]Provider(nil), r.list...) }
