package app

import (
	"fmt"
	"net/http"
	"testing"
)

// Concurrent requests answered with the admin routes' errors (unknown tenant,
// gateway down for usage, bad input). Each answer is built fresh; run with
// -race this guards against client errors shared between requests.
func TestAdminErrorsUnderConcurrentRequests(t *testing.T) {
	t.Parallel()
	s := startServer(t, "GATEWAY_GRPC_ADDR="+deadAddr(t), "GATEWAY_RPC_TIMEOUT=1s", "PLATFORM_ADMIN_EMAILS=root@platform.example")
	root := s.newAdmin(t, "root@platform.example")
	s.newTenant(t, root, "Root Org", "root-org")
	const unknown = "/platform/api/admin/tenants/00000000-0000-4000-8000-000000000000"
	// Parallel subtests (not bare goroutines: the helpers may t.Fatal).
	for i := range 24 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			switch i % 4 {
			case 0:
				wantError(t, s.get(t, unknown, root.Global), http.StatusNotFound, "tenant_not_found")
			case 1:
				wantError(t, s.put(t, unknown+"/status", root.Global, obj{"status": "suspended"}), http.StatusNotFound, "tenant_not_found")
			case 2:
				wantField(t, s.get(t, "/platform/api/admin/tenants?status=gone", root.Global), "status")
			case 3:
				// The gateway is down: usage is null, the list still answers.
				if l := wantEnvelope(t, s.get(t, "/platform/api/admin/tenants", root.Global)); l.Items[0]["usage_this_month"] != nil {
					t.Errorf("usage with the gateway down = %v", l.Items[0]["usage_this_month"])
				}
			}
		})
	}
}
