// Package platform is the gateway's side of the platform-backend contract:
// cached token introspection and cached tenant contexts, both fed over gRPC
// and invalidated by NATS events.
package platform

import (
	"context"
	"log/slog"
	"sync"
	"time"
	"trueportai/services/gateway/internal/provider"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	platformv1 "trueportai/proto/gen/trueport/platform/v1"
)

// Tenant is the gateway's read-only view of a tenant (immutable once cached).
type Tenant struct {
	ID                 string
	Slug               string
	Status             string
	PlanID             string
	MonthlyRequests    int64
	MaxAPIKeys         int64
	MaxRPMPerKey       int64
	DefaultRPM         int64
	AllowedModels      []string
	Providers          map[string]provider.Credential
	LogRequestBodies   bool
	LogResponseBodies  bool
	RedactLoggedBodies bool
	RetentionDays      int64
	FetchedAt          time.Time
}

// Active reports whether the tenant may use the gateway.
func (t *Tenant) Active() bool { return t.Status == "active" }

func fromProto(tc *platformv1.TenantContext, now time.Time) *Tenant {
	t := &Tenant{
		ID: tc.GetTenantId(), Slug: tc.GetSlug(), Status: tc.GetStatus(), PlanID: tc.GetPlanId(),
		MonthlyRequests: tc.GetLimits().GetMonthlyRequests(), MaxAPIKeys: tc.GetLimits().GetMaxApiKeys(),
		MaxRPMPerKey: tc.GetLimits().GetMaxRpmPerKey(), DefaultRPM: tc.GetDefaultRpm(), AllowedModels: tc.GetAllowedModels(),
		Providers:        make(map[string]provider.Credential, len(tc.GetProviders())),
		LogRequestBodies: tc.GetStorage().GetLogRequestBodies(), LogResponseBodies: tc.GetStorage().GetLogResponseBodies(),
		RedactLoggedBodies: tc.GetStorage().GetRedactLoggedBodies(), RetentionDays: tc.GetStorage().GetRetentionDays(),
		FetchedAt: now,
	}
	for name, p := range tc.GetProviders() {
		t.Providers[name] = provider.Credential{APIKey: p.GetApiKey(), BaseURL: p.GetBaseUrl(), Region: p.GetRegion(),
			AccessKeyID: p.GetAccessKeyId(), SecretAccessKey: p.GetSecretAccessKey(),
			Resources: p.GetResources(), Deployments: p.GetDeployments()}
	}
	return t
}

// Tenants caches tenant contexts. Get never does I/O; Fetch and Prefetch do.
type Tenants struct {
	client platformv1.TenantServiceClient
	log    *slog.Logger
	ttl    time.Duration
	now    func() time.Time

	mu      sync.RWMutex
	m       map[string]*Tenant
	pending map[string]bool
	wg      sync.WaitGroup
}

// NewTenants returns an empty cache.
func NewTenants(client platformv1.TenantServiceClient, ttl time.Duration, log *slog.Logger) *Tenants {
	return &Tenants{client: client, log: log, ttl: ttl, now: time.Now, m: map[string]*Tenant{}, pending: map[string]bool{}}
}

// Get returns the cached context (hot path: no I/O).
func (ts *Tenants) Get(id string) (*Tenant, bool) {
	ts.mu.RLock()
	t, ok := ts.m[id]
	ts.mu.RUnlock()
	return t, ok
}

// Fetch loads a tenant from the platform now and caches it.
func (ts *Tenants) Fetch(ctx context.Context, id string) (*Tenant, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := ts.client.GetTenantContext(ctx, &platformv1.GetTenantContextRequest{TenantId: id})
	if status.Code(err) == codes.NotFound {
		ts.mu.Lock()
		delete(ts.m, id)
		ts.mu.Unlock()
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	t := fromProto(resp.GetTenant(), ts.now())
	ts.mu.Lock()
	ts.m[id] = t
	ts.mu.Unlock()
	return t, nil
}

// Prefetch refreshes a tenant in the background (deduplicated).
func (ts *Tenants) Prefetch(id string) {
	ts.mu.Lock()
	if ts.pending[id] {
		ts.mu.Unlock()
		return
	}
	ts.pending[id] = true
	ts.mu.Unlock()
	ts.wg.Add(1)
	go func() {
		defer ts.wg.Done()
		if _, err := ts.Fetch(context.Background(), id); err != nil && status.Code(err) != codes.NotFound {
			ts.log.Warn("tenant context fetch failed", "tenant_id", id, "err", err)
		}
		ts.mu.Lock()
		delete(ts.pending, id)
		ts.mu.Unlock()
	}()
}

// Run refreshes every cached tenant (plus extra ids, e.g. owners of keys)
// every ttl until ctx ends: the safety net behind change events.
func (ts *Tenants) Run(ctx context.Context, extra func() []string) {
	tick := time.NewTicker(ts.ttl)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			ts.wg.Wait()
			return
		case <-tick.C:
		}
		for _, id := range ts.ids(extra) {
			ts.Prefetch(id)
		}
	}
}

func (ts *Tenants) ids(extra func() []string) []string {
	ts.mu.RLock()
	seen := make(map[string]bool, len(ts.m))
	var out []string
	for id := range ts.m {
		seen[id] = true
		out = append(out, id)
	}
	ts.mu.RUnlock()
	if extra != nil {
		for _, id := range extra() {
			if !seen[id] {
				seen[id] = true
				out = append(out, id)
			}
		}
	}
	return out
}

// Warm prefetches ids and waits (bounded by ctx) for them to load.
func (ts *Tenants) Warm(ctx context.Context, ids []string) {
	for _, id := range ids {
		ts.Prefetch(id)
	}
	done := make(chan struct{})
	go func() { ts.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}
