package deploy

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestK8sFiles renders every overlay and runs every Kubernetes check.
func TestK8sFiles(t *testing.T) {
	rep := CheckK8s(context.Background(), Repo{Root: root(t)})
	for _, r := range rep.Results {
		t.Log(r)
	}
	for _, r := range rep.Failed() {
		t.Error(r)
	}
}

// brokenCase breaks the real files (edits, removals, added files) and
// names the check that must then fail.
type brokenCase struct {
	want    string
	edits   []edit
	added   map[string]string
	removed []string
}

// brokenRepo applies c to the repository at r.
func brokenRepo(t *testing.T, r string, c brokenCase) Repo {
	t.Helper()
	repo := Repo{Root: r, Files: map[string]string{}, Removed: map[string]bool{}}
	for _, f := range c.removed {
		repo.Removed[f] = true
	}
	for f, s := range c.added {
		repo.Files[f] = s
	}
	for _, e := range c.edits {
		cur, ok := repo.Files[e.file]
		if !ok {
			b, err := os.ReadFile(filepath.Join(r, e.file))
			if err != nil {
				t.Fatal(err)
			}
			cur = string(b)
		}
		if !strings.Contains(cur, e.old) {
			t.Fatalf("%s does not contain %q: update the case", e.file, e.old)
		}
		repo.Files[e.file] = strings.Replace(cur, e.old, e.new, 1)
	}
	return repo
}

// runBrokenCases runs each case through check, wants its check to fail,
// and then wants every check the real files pass to have a case.
func runBrokenCases(t *testing.T, cases []brokenCase, check func(Repo) *Report) {
	r := root(t)
	covered := map[string]bool{}
	for _, c := range cases {
		name := c.want
		if len(c.edits) > 0 {
			name += "/" + c.edits[0].new
		}
		t.Run(name, func(t *testing.T) {
			rep := check(brokenRepo(t, r, c))
			for _, f := range rep.Failed() {
				if f.ID == c.want {
					covered[c.want] = true
					t.Log(f)
					return
				}
			}
			t.Errorf("check %s did not fail; failures: %v", c.want, rep.Failed())
		})
	}
	for _, res := range check(Repo{Root: r}).Results {
		if !covered[res.ID] {
			t.Errorf("no case makes check %s fail", res.ID)
			covered[res.ID] = true
		}
	}
}

// TestEachK8sCheckCatchesItsDefect breaks the manifests one way per case.
func TestEachK8sCheckCatchesItsDefect(t *testing.T) {
	const (
		base     = "deploy/k8s/base/"
		platform = base + "platform-backend.yaml"
		gateway  = base + "gateway.yaml"
		ingester = base + "gateway-ingester.yaml"
		netpol   = base + "network-policies.yaml"
		ingress  = base + "ingress.yaml"
		dev      = "deploy/k8s/overlays/dev/"
		prod     = "deploy/k8s/overlays/prod/"
	)
	cases := []brokenCase{
		{want: "k8s.overlays", added: map[string]string{"deploy/k8s/overlays/staging/kustomization.yaml": "resources: [../../base]\n"}},
		{want: "k8s.render", edits: []edit{{dev + "kustomization.yaml", "  - nats.yaml\n", "  - natz.yaml\n"}}},
		{want: "k8s.decode", edits: []edit{{gateway, "terminationGracePeriodSeconds: 140", "terminationGracePeriodSecond: 140"}}},
		{want: "k8s.decode", edits: []edit{{prod + "secret.example.yaml", "stringData:\n  # Postgres", "stringDat:\n  # Postgres"}}},
		{want: "k8s.namespace", edits: []edit{{dev + "namespace.yaml", "    pod-security.kubernetes.io/enforce: restricted\n", ""}}},
		{want: "k8s.namespace", edits: []edit{{prod + "secret.example.yaml", "  name: trueportai\n  namespace: trueportai\n", "  name: trueportai\n  namespace: default\n"}}},
		{want: "k8s.workloads", edits: []edit{{ingester, "value: ingester", "value: all"}}},
		{want: "k8s.images", edits: []edit{{dev + "postgres.yaml", "image: postgres:15", "image: localhost:5000/postgres:15"}}},
		{want: "k8s.images", edits: []edit{{dev + "nats.yaml", "image: nats:2.10-alpine", "image: nats:latest"}}},
		{want: "k8s.probes", edits: []edit{{dev + "nats.yaml", "          readinessProbe:\n            httpGet:\n              path: /healthz?js-enabled-only=true\n              port: monitor\n            periodSeconds: 5\n", ""}}},
		{want: "k8s.resources", edits: []edit{{platform, "              memory: 512Mi # argon2id takes 19 MiB per hash in flight\n", ""}}},
		{want: "k8s.security", edits: []edit{{platform, "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false"}}},
		{want: "k8s.security", edits: []edit{{dev + "nats.yaml", "        runAsUser: 1000\n", "        runAsUser: 0\n"}}},
		{want: "k8s.env-read", edits: []edit{{gateway, "            - name: GATEWAY_ROLE\n", "            - name: GATEWAY_DEBUG\n              value: \"1\"\n            - name: GATEWAY_ROLE\n"}}},
		// An announced variable on a binary it was not announced for.
		{want: "k8s.env-read", edits: []edit{{platform, "            - name: PLATFORM_INTERNAL_ADDR\n", "            - name: GATEWAY_INTERNAL_ADDR\n              value: 0.0.0.0:9181\n            - name: PLATFORM_INTERNAL_ADDR\n"}}},
		// (kustomize merges duplicates in a list it patches: the fake
		// provider's is not patched.)
		{want: "k8s.env-unique", edits: []edit{{dev + "fake-provider.yaml", "            - name: FAKE_PROVIDER_ADDR\n              value: 0.0.0.0:8090\n", "            - name: FAKE_PROVIDER_ADDR\n              value: 0.0.0.0:8090\n            - name: FAKE_PROVIDER_ADDR\n              value: 0.0.0.0:8091\n"}}},
		{want: "k8s.env-required", edits: []edit{{ingester, "            - name: SERVICE_INSTANCE_ID\n              valueFrom:\n                fieldRef:\n                  fieldPath: metadata.name\n", ""}}},
		{want: "k8s.env-required", edits: []edit{{prod + "patch-prod.yaml", "            - name: SECRETS_ENCRYPTION_KEY\n", "            - name: SECRETS_ENCRYPTION_KEYS_PREVIOUS\n"}}},
		{want: "k8s.listen", edits: []edit{{platform, "value: 0.0.0.0:8080", "value: 127.0.0.1:8080"}}},
		{want: "k8s.listen", edits: []edit{{ingester, "            - name: metrics\n              containerPort: 9181\n", "            - name: metrics\n              containerPort: 9181\n            - name: grpc\n              containerPort: 9091\n"}}},
		{want: "k8s.probe-route", edits: []edit{{platform, "path: /health/live", "path: /healthz"}}},
		// The ingester serves the health routes only: not the proxy's.
		{want: "k8s.probe-route", edits: []edit{{ingester, "path: /trueportai-services/health/ready", "path: /trueportai-services/api/v1/keys"}}},
		// Readiness on a route that checks Postgres and NATS (every pod out
		// of the Service in an outage), or on liveness (never false when
		// draining).
		{want: "k8s.readiness-local", edits: []edit{{platform, "          readinessProbe:\n            httpGet:\n              path: /health/ready/local\n", "          readinessProbe:\n            httpGet:\n              path: /health/ready\n"}}},
		{want: "k8s.readiness-local", edits: []edit{{gateway, "          readinessProbe:\n            httpGet:\n              path: /trueportai-services/health/ready/local\n", "          readinessProbe:\n            httpGet:\n              path: /trueportai-services/health/live\n"}}},
		{want: "k8s.secret-env", edits: []edit{{platform, "            - name: REDIS_URL\n              valueFrom:\n                secretKeyRef:\n                  name: trueportai\n                  key: redis-url\n", "            - name: REDIS_URL\n              value: redis://:hunter2@redis:6379/0\n"}}},
		// An optional Redis key: left out of the Secret, every replica
		// would keep its own limits.
		{want: "k8s.redis", edits: []edit{{gateway, "                  key: redis-url\n", "                  key: redis-url\n                  optional: true\n"}}},
		// The ingester applies no limit: no REDIS_URL.
		{want: "k8s.redis", edits: []edit{{ingester, "            - name: SERVICE_INSTANCE_ID\n", "            - name: REDIS_URL\n              valueFrom:\n                secretKeyRef:\n                  name: trueportai\n                  key: redis-url\n            - name: SERVICE_INSTANCE_ID\n"}}},
		{want: "k8s.env-required", edits: []edit{{platform, "            - name: REDIS_URL\n              valueFrom:\n                secretKeyRef:\n                  name: trueportai\n                  key: redis-url\n", ""}}},
		{want: "k8s.limits-fallback", edits: []edit{{dev + "patch-dev.yaml", "              value: \"1\" # the HPA's minReplicas here", "              value: \"2\""}}},
		{want: "k8s.gomemlimit", edits: []edit{{platform, "resource: limits.memory", "resource: requests.memory"}}},
		{want: "k8s.file-env", edits: []edit{{prod + "patch-prod.yaml", "value: /etc/trueportai/jwt/signing.pem", "value: /etc/jwt/signing.pem"}}},
		{want: "k8s.selector", edits: []edit{{ingester, "  selector:\n    matchLabels:\n      app.kubernetes.io/name: gateway\n      app.kubernetes.io/component: ingester\n", "  selector:\n    matchLabels:\n      app.kubernetes.io/name: gateway\n      app.kubernetes.io/component: ingestor\n"}}},
		{want: "k8s.pod-hygiene", edits: []edit{{dev + "fake-provider.yaml", "      automountServiceAccountToken: false\n", ""}}},
		{want: "k8s.volumes", edits: []edit{{gateway, "            - name: spool\n", "            - name: spoool\n"}}},
		{want: "k8s.drain", edits: []edit{{platform, "          lifecycle:\n            preStop:\n              sleep:\n                seconds: 5 # drain delay: endpoints and ingress catch up before the listener closes\n", ""}}},
		{want: "k8s.shutdown", edits: []edit{{platform, "terminationGracePeriodSeconds: 45", "terminationGracePeriodSeconds: 30"}}},
		{want: "k8s.shutdown", edits: []edit{{gateway, "              value: 120s", "              value: 180s"}}},
		{want: "k8s.spool", edits: []edit{{gateway, "sizeLimit: 1280Mi", "sizeLimit: 512Mi"}}},
		{want: "k8s.secret-ref", edits: []edit{{dev + "secret.yaml", "  nats-url: nats://nats:4222\n", ""}}},
		{want: "k8s.secret-ref", edits: []edit{{prod + "secret.example.yaml", "  smtp-password: CHANGE-ME\n", ""}}},
		{want: "k8s.secret-example", edits: []edit{{prod + "secret.example.yaml", "  smtp-password: CHANGE-ME\n", "  smtp-password: CHANGE-ME\n  smtp-port: \"587\"\n"}}},
		{want: "k8s.secret-example", edits: []edit{{prod + "kustomization.yaml", "  - ../../base\n", "  - ../../base\n  - secret.example.yaml\n"}}},
		{want: "k8s.service", edits: []edit{{gateway, "      targetPort: metrics", "      targetPort: metric"}}},
		{want: "k8s.dial", edits: []edit{{platform, "value: gateway:9091", "value: gateway:9092"}}},
		{want: "k8s.dial", edits: []edit{{dev + "secret.yaml", "nats-url: nats://nats:4222", "nats-url: nats://jetstream:4222"}}},
		{want: "k8s.db-credentials", edits: []edit{{dev + "secret.yaml", "postgres://postgres:trueportai-dev@postgres:5432/trueport_platform", "postgres://postgres:secret@postgres:5432/trueport_platform"}}},
		{want: "k8s.ingress-backend", edits: []edit{{ingress, "                name: gateway\n                port:\n                  name: http\n", "                name: gateway\n                port:\n                  name: web\n"}}},
		{want: "k8s.ingress-routes", edits: []edit{{ingress, "          - path: /platform/api\n", "          - path: /platform/api/global\n"}}},
		{want: "k8s.ingress-routes", edits: []edit{{ingress, "                name: platform-backend\n", "                name: gateway\n"}}},
		{want: "k8s.ingress-internal", edits: []edit{{ingress, "          - path: /trueportai-services\n", "          - path: /\n"}}},
		{want: "k8s.ingress-streaming", edits: []edit{{ingress, `proxy-buffering: "off"`, `proxy-buffering: "on"`}}},
		{want: "k8s.ingress-streaming", edits: []edit{{ingress, `proxy-read-timeout: "360"`, `proxy-read-timeout: "120"`}}},
		{want: "k8s.ingress-limits", edits: []edit{{ingress, "proxy-body-size: 33m", "proxy-body-size: 32m"}}},
		{want: "k8s.ingress-limits", edits: []edit{{ingress, "    nginx.ingress.kubernetes.io/proxy-body-size: 2m\n", ""}}},
		{want: "k8s.netpol-default-deny", edits: []edit{{netpol, "  name: default-deny-ingress\nspec:\n  podSelector: {}\n", "  name: default-deny-ingress\nspec:\n  podSelector:\n    matchLabels:\n      app.kubernetes.io/name: gateway\n"}}},
		{want: "k8s.netpol-needed", edits: []edit{{netpol, "              app.kubernetes.io/name: gateway # proxy and ingester\n", "              app.kubernetes.io/component: proxy\n"}}},
		{want: "k8s.netpol-needed", edits: []edit{{netpol, "              kubernetes.io/metadata.name: ingress-nginx\n", "              kubernetes.io/metadata.name: ingress\n"}}},
		{want: "k8s.netpol-excess", edits: []edit{{dev + "network-policies.yaml", "        - podSelector:\n            matchExpressions:\n              - key: app.kubernetes.io/name\n                operator: In\n                values: [\"platform-backend\", \"gateway\"]\n      ports:\n        - port: client\n", "        - podSelector: {}\n      ports:\n        - port: client\n"}}},
		// Redis admitted from the ingester too (it applies no limit).
		{want: "k8s.netpol-excess", edits: []edit{{dev + "network-policies.yaml", "        - podSelector:\n            matchLabels:\n              app.kubernetes.io/name: gateway\n              app.kubernetes.io/component: proxy\n      ports:\n        - port: redis\n", "        - podSelector:\n            matchLabels:\n              app.kubernetes.io/name: gateway\n      ports:\n        - port: redis\n"}}},
		{want: "k8s.netpol-needed", edits: []edit{{dev + "network-policies.yaml", "        - podSelector:\n            matchLabels:\n              app.kubernetes.io/name: platform-backend\n        - podSelector:\n", "        - podSelector:\n"}}},
		{want: "k8s.secret-ref", edits: []edit{{dev + "secret.yaml", "  redis-url: redis://redis:6379/0\n", ""}}},
		{want: "k8s.dial", edits: []edit{{dev + "secret.yaml", "redis-url: redis://redis:6379/0", "redis-url: redis://redis:6380/0"}}},
		// gRPC admitted from the monitoring namespace too.
		{want: "k8s.netpol-excess", edits: []edit{{netpol, "      ports:\n        - port: metrics\n---", "      ports:\n        - port: metrics\n        - port: grpc\n---"}}},
		{want: "k8s.hpa", edits: []edit{{gateway, "spec:\n  revisionHistoryLimit: 5\n", "spec:\n  replicas: 2\n  revisionHistoryLimit: 5\n"}}},
		{want: "k8s.hpa", edits: []edit{{gateway, "    kind: Deployment\n    name: gateway\n", "    kind: Deployment\n    name: gateway-proxy\n"}}},
		{want: "k8s.pdb", edits: []edit{{ingester, "spec:\n  maxUnavailable: 1\n", "spec:\n  maxUnavailable: 0\n"}}},
		{want: "k8s.pdb", edits: []edit{{gateway, "  maxUnavailable: 1\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: gateway\n      app.kubernetes.io/component: proxy\n", "  maxUnavailable: 1\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: gateway\n"}}},
	}
	runBrokenCases(t, cases, func(repo Repo) *Report { return CheckK8s(context.Background(), repo) })
}
