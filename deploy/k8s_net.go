package deploy

import (
	"context"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// ------------------------------------------------------------ Secrets

// checkSecrets: every Secret key a pod or Ingress references exists (in a
// rendered Secret or the overlay's example file), every key of those
// Secrets is referenced, and example Secrets are never rendered (an apply
// would overwrite the real ones).
func checkSecrets(rep *Report, m *manifests) {
	o := m.overlay
	used := map[string]map[string]bool{} // secret -> keys ("" = all)
	use := func(what, name, key string, optional bool) {
		if used[name] == nil {
			used[name] = map[string]bool{}
		}
		used[name][key] = true
		s, ok := m.secret(name)
		if !rep.check("k8s.secret-ref", ok, "%s: %s references Secret %s, which exists (rendered or example)", o, what, name) || key == "" {
			return
		}
		_, ok = secretKeys(s)[key]
		opt := ""
		if optional {
			opt = " (optional, but documented there)"
		}
		rep.check("k8s.secret-ref", ok, "%s: %s references key %s of Secret %s, which has it%s", o, what, key, name, opt)
	}
	for _, w := range m.workloads {
		for _, c := range w.containers {
			for _, e := range c.c.Env {
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
					r := e.ValueFrom.SecretKeyRef
					use(c.String()+" "+e.Name, r.Name, r.Key, r.Optional != nil && *r.Optional)
				}
			}
			for _, ef := range c.c.EnvFrom {
				if ef.SecretRef != nil {
					use(c.String()+" envFrom", ef.SecretRef.Name, "", false)
				}
			}
		}
		for _, v := range w.spec.Volumes {
			if v.Secret == nil {
				continue
			}
			if len(v.Secret.Items) == 0 {
				use(w.name+" volume "+v.Name, v.Secret.SecretName, "", false)
			}
			for _, it := range v.Secret.Items {
				use(w.name+" volume "+v.Name, v.Secret.SecretName, it.Key, false)
			}
		}
	}
	for _, ing := range m.ingresses {
		for _, t := range ing.Spec.TLS {
			use("Ingress "+ing.Name+" tls", t.SecretName, "tls.crt", false)
			use("Ingress "+ing.Name+" tls", t.SecretName, "tls.key", false)
		}
	}
	all := map[string]bool{}
	for n := range m.secrets {
		all[n] = true
	}
	for n := range m.examples {
		all[n] = true
		_, rendered := m.secrets[n]
		rep.check("k8s.secret-example", !rendered, "%s: example Secret %s is not rendered (an apply must not overwrite the real one)", o, n)
	}
	for _, n := range slices.Sorted(mapsKeys(all)) {
		s, _ := m.secret(n)
		for _, k := range slices.Sorted(mapsKeys(secretKeys(s))) {
			rep.check("k8s.secret-example", used[n][""] || used[n][k], "%s: key %s of Secret %s is referenced by the manifests", o, k, n)
		}
	}
}

// ------------------------------------------------------------ Services

// servicePortTarget resolves a Service port's target in workload w.
func servicePortTarget(sp corev1.ServicePort, w *workload) (int32, bool) {
	t := sp.TargetPort
	switch {
	case t.Type == intstr.String && t.StrVal != "":
		n, _, ok := w.containerPort(t.StrVal, 0)
		return n, ok
	case t.IntVal != 0:
		n, _, ok := w.containerPort("", t.IntVal)
		return n, ok
	default:
		n, _, ok := w.containerPort("", sp.Port)
		return n, ok
	}
}

// checkServices: each Service selects pods and each of its ports reaches a
// port those pods declare; a StatefulSet's serviceName exists.
func checkServices(rep *Report, m *manifests) {
	o := m.overlay
	for _, s := range m.services {
		ws := m.workloadsOf(s)
		if !rep.check("k8s.service", len(ws) > 0, "%s: Service %s selects the pods of a workload", o, s.Name) {
			continue
		}
		for _, sp := range s.Spec.Ports {
			for _, w := range ws {
				_, ok := servicePortTarget(sp, w)
				rep.check("k8s.service", ok, "%s: Service %s port %s reaches a port %s declares (%s)", o, s.Name, sp.Name, w, sp.TargetPort.String())
			}
		}
	}
	for _, w := range m.workloads {
		if w.kind == "StatefulSet" {
			rep.check("k8s.service", m.service(w.serviceName) != nil, "%s: %s serviceName %s is a Service", o, w, w.serviceName)
		}
	}
}

// ------------------------------------------------------------ Dials and flows

// source is where a connection comes from: a workload's pods, any pod of a
// namespace (w nil), or outside the cluster.
type source struct {
	ns      string
	w       *workload
	outside bool
}

func (s source) String() string {
	switch {
	case s.outside:
		return "outside the cluster"
	case s.w == nil:
		return s.ns + "/*"
	}
	return s.ns + "/" + s.w.name
}

// flow is a connection the manifests need: src to dst's port.
type flow struct {
	src  source
	dst  *workload
	port int32
	why  string
}

func (f flow) same(src source, dst *workload, port int32) bool {
	return f.src.ns == src.ns && f.src.w == src.w && f.src.outside == src.outside && f.dst == dst && f.port == port
}

// defaultPorts by URL scheme.
var defaultPorts = map[string]int{"postgres": 5432, "postgresql": 5432, "nats": 4222, "redis": 6379, "rediss": 6379, "http": 80, "https": 443}

// dialTarget reads the host and port a variable's value dials.
func dialTarget(name, val string) (host string, port int, ok bool) {
	if strings.HasSuffix(name, "_ADDR") {
		h, p, err := net.SplitHostPort(val)
		n, perr := strconv.Atoi(p)
		return h, n, err == nil && perr == nil
	}
	u, err := url.Parse(strings.NewReplacer("{resource}", "r", "{deployment}", "d", "{region}", "r").Replace(val))
	if err != nil || u.Hostname() == "" {
		return "", 0, false
	}
	port, err = strconv.Atoi(u.Port())
	if err != nil {
		port, ok = defaultPorts[u.Scheme]
		return u.Hostname(), port, ok
	}
	return u.Hostname(), port, true
}

// inCluster reports whether host is a Service of the namespace (a single
// DNS label; names with dots and addresses are outside).
func inCluster(host string) bool {
	if _, err := netip.ParseAddr(host); err == nil {
		return false
	}
	return host != "localhost" && !strings.Contains(host, ".")
}

// checkDials: each address a binary dials (…_ADDR, …_URL, …_URL_TEMPLATE
// that is not a listen address) that names a Service of the namespace
// reaches a port of that Service's pods; the flows are returned for the
// NetworkPolicy checks. A dial to the in-cluster Postgres uses its
// credentials.
func checkDials(rep *Report, m *manifests) []flow {
	o := m.overlay
	var flows []flow
	for _, c := range m.containers() {
		if c.binary == "" {
			continue
		}
		b, _ := binaryByName(c.binary)
		for _, e := range c.c.Env {
			name := e.Name
			dialVar := strings.HasSuffix(name, "_ADDR") || strings.HasSuffix(name, "_URL") || strings.HasSuffix(name, "_URL_TEMPLATE")
			if _, listens := b.listen[c.role][name]; listens || !dialVar || notDialled[name] || strings.HasSuffix(name, "_INTERNAL_ADDR") {
				continue
			}
			val, _, known := m.envValue(c.c, name)
			if !known {
				continue // optional Secret key absent, or not knowable here
			}
			host, port, ok := dialTarget(name, val)
			if !rep.check("k8s.dial", ok, "%s: %s %s is a dialable address (%q)", o, c, name, redact(val)) || !inCluster(host) {
				continue
			}
			svc := m.service(host)
			var sp *corev1.ServicePort
			if svc != nil {
				for i := range svc.Spec.Ports {
					if svc.Spec.Ports[i].Port == int32(port) {
						sp = &svc.Spec.Ports[i]
					}
				}
			}
			if !rep.check("k8s.dial", sp != nil, "%s: %s %s dials Service %s port %d, which exists", o, c, name, host, port) {
				continue
			}
			for _, w := range m.workloadsOf(svc) {
				if n, ok := servicePortTarget(*sp, w); ok {
					flows = append(flows, flow{src: source{ns: m.ns, w: c.w}, dst: w, port: n, why: c.String() + " " + name})
				}
				checkDBCredentials(rep, m, c, name, val, w)
			}
		}
	}
	return flows
}

// checkDBCredentials: a database URL that dials the in-cluster Postgres
// carries its user and password.
func checkDBCredentials(rep *Report, m *manifests, c *container, name, val string, target *workload) {
	for _, tc := range target.containers {
		if !strings.HasPrefix(tc.c.Image, "postgres:") {
			continue
		}
		user, _, _ := m.envValue(tc.c, "POSTGRES_USER")
		if user == "" {
			user = "postgres"
		}
		pass, _, _ := m.envValue(tc.c, "POSTGRES_PASSWORD")
		u, err := url.Parse(val)
		got, _ := "", false
		if err == nil {
			got, _ = u.User.Password()
		}
		rep.check("k8s.db-credentials", err == nil && u.User.Username() == user && got == pass,
			"%s: %s %s logs in as Postgres's user with its password", m.overlay, c, name)
	}
}

// redact hides a URL's password in messages.
func redact(v string) string {
	if u, err := url.Parse(v); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxx")
			return u.String()
		}
	}
	return v
}

// metricsFlows: the monitoring namespace scrapes every port named metrics.
func metricsFlows(m *manifests) []flow {
	var out []flow
	for _, w := range m.workloads {
		for _, c := range w.containers {
			for _, p := range c.c.Ports {
				if p.Name == "metrics" {
					out = append(out, flow{src: source{ns: monitoringNS}, dst: w, port: p.ContainerPort, why: "metrics scrape"})
				}
			}
		}
	}
	return out
}

// ------------------------------------------------------------ Ingress

// ingressTarget is the backend the Ingresses route request path p to
// (ingress-nginx: the longest matching path; Exact before Prefix).
func ingressTarget(m *manifests, p string) (*networkingv1.Ingress, *networkingv1.IngressBackend) {
	var bestIng *networkingv1.Ingress
	var best *networkingv1.IngressBackend
	bestLen, bestExact := -1, false
	for _, ing := range m.ingresses {
		for _, r := range ing.Spec.Rules {
			if r.HTTP == nil {
				continue
			}
			for i := range r.HTTP.Paths {
				hp := &r.HTTP.Paths[i]
				exact := hp.PathType != nil && *hp.PathType == networkingv1.PathTypeExact
				var match bool
				if exact {
					match = p == hp.Path
				} else {
					pre := strings.TrimSuffix(hp.Path, "/")
					match = pre == "" || p == pre || strings.HasPrefix(p, pre+"/")
				}
				if match && (len(hp.Path) > bestLen || len(hp.Path) == bestLen && exact && !bestExact) {
					bestIng, best, bestLen, bestExact = ing, &hp.Backend, len(hp.Path), exact
				}
			}
		}
		if ing.Spec.DefaultBackend != nil && bestLen < 0 {
			bestIng, best, bestLen = ing, ing.Spec.DefaultBackend, 0
		}
	}
	return bestIng, best
}

// backendWorkloads resolves an Ingress backend to the Service's workloads
// and the port each receives on.
func backendWorkloads(m *manifests, be *networkingv1.IngressBackend) (map[*workload]int32, bool) {
	if be == nil || be.Service == nil {
		return nil, false
	}
	svc := m.service(be.Service.Name)
	if svc == nil {
		return nil, false
	}
	var sp *corev1.ServicePort
	for i := range svc.Spec.Ports {
		p := &svc.Spec.Ports[i]
		if (be.Service.Port.Name != "" && p.Name == be.Service.Port.Name) || (be.Service.Port.Name == "" && p.Port == be.Service.Port.Number) {
			sp = p
		}
	}
	if sp == nil {
		return nil, false
	}
	out := map[*workload]int32{}
	for _, w := range m.workloadsOf(svc) {
		if n, ok := servicePortTarget(*sp, w); ok {
			out[w] = n
		}
	}
	return out, len(out) > 0
}

// checkIngress: the Ingresses route each binary's public routes (its edge
// prefix) to the Service of the workloads serving them, on their HTTP
// port, route nothing else, relay the gateway's streams unbuffered with
// timeouts above the gateway's own, and admit bodies up to each service's
// limit. Returns the flows from the ingress controller.
func checkIngress(ctx context.Context, rep *Report, repo Repo, m *manifests) []flow {
	o := m.overlay
	var flows []flow
	for _, ing := range m.ingresses {
		cls := ""
		if ing.Spec.IngressClassName != nil {
			cls = *ing.Spec.IngressClassName
		}
		rep.check("k8s.ingress-backend", cls == "nginx" && ing.Spec.DefaultBackend == nil,
			"%s: Ingress %s is for ingress-nginx (class %q) and has no default backend", o, ing.Name, cls)
		for _, r := range ing.Spec.Rules {
			if r.HTTP == nil {
				continue
			}
			for _, hp := range r.HTTP.Paths {
				pt := ""
				if hp.PathType != nil {
					pt = string(*hp.PathType)
				}
				ws, ok := backendWorkloads(m, &hp.Backend)
				rep.check("k8s.ingress-backend", ok && (pt == "Prefix" || pt == "Exact"),
					"%s: Ingress %s path %s (%s) reaches a Service port with pods behind it", o, ing.Name, hp.Path, pt)
				for w, port := range ws {
					flows = append(flows, flow{src: source{ns: ingressControllerNS}, dst: w, port: port, why: "Ingress " + ing.Name})
				}
			}
		}
	}

	routed := map[string]bool{} // public paths checked, for messages
	for _, b := range k8sBinaries {
		if len(b.edges) == 0 {
			continue
		}
		role := ""
		if slices.Contains(b.roles, roleProxy) {
			role = roleProxy
		}
		routes, err := servedRoutes(repo, b.name, role)
		if !rep.check("k8s.ingress-routes", err == nil && len(routes) > 0, "%s: %s's route table reads (%v)", o, b.name, err) {
			continue
		}
		for _, r := range routes {
			p := samplePath(r.path)
			ing, be := ingressTarget(m, p)
			if under, edge := b.underEdge(p); !under {
				rep.check("k8s.ingress-internal", be == nil, "%s: %s %s (not under %s) is not routed by an Ingress", o, b.name, r.path, edge)
				continue
			}
			routed[p] = true
			ws, ok := backendWorkloads(m, be)
			for w, port := range ws {
				hp, c, _ := w.containerPort("http", 0)
				ok = ok && c != nil && c.binary == b.name && (role == "" || c.role == role) && hp == port
			}
			name := "none"
			if ing != nil {
				name = ing.Name
			}
			rep.check("k8s.ingress-routes", ok, "%s: %s %s %s is routed to %s's HTTP port (Ingress %s)", o, b.name, r.method, r.path, b.name, name)
		}
	}
	for _, p := range append(slices.Clone(internalPaths), "/health", "/health/ready") {
		if routed[p] {
			continue
		}
		_, be := ingressTarget(m, p)
		rep.check("k8s.ingress-internal", be == nil, "%s: %s is not routed by an Ingress", o, p)
	}

	checkIngressAnnotations(ctx, rep, repo, m)
	return flows
}

// restBodyLimit is the REST routes' body limit (spec: management 1 MiB).
const restBodyLimit = 1 << 20

func checkIngressAnnotations(ctx context.Context, rep *Report, repo Repo, m *manifests) {
	o := m.overlay
	gw, _ := binaryByName("gateway")
	reads, err := binaryEnv(ctx, repo.Root, gw.target)
	if err != nil {
		rep.check("k8s.ingress-streaming", false, "%s: the gateway's variables read (%v)", o, err)
		return
	}
	proxies := m.binaryWorkloads("gateway", roleProxy)
	for _, ing := range m.ingresses {
		toProxy, toPlatform := false, false
		for _, r := range ing.Spec.Rules {
			if r.HTTP == nil {
				continue
			}
			for _, hp := range r.HTTP.Paths {
				ws, _ := backendWorkloads(m, &hp.Backend)
				for w := range ws {
					toProxy = toProxy || slices.Contains(proxies, w)
					toPlatform = toPlatform || slices.Contains(m.binaryWorkloads("platform-backend", ""), w)
				}
			}
		}
		a := ing.Annotations
		bodySize, bodyOK := nginxSize(a["nginx.ingress.kubernetes.io/proxy-body-size"])
		if toPlatform {
			rep.check("k8s.ingress-limits", bodyOK && bodySize > restBodyLimit,
				"%s: Ingress %s proxy-body-size %q is above the platform's 1 MiB body limit (the platform answers 413 itself)", o, ing.Name, a["nginx.ingress.kubernetes.io/proxy-body-size"])
		}
		if !toProxy {
			continue
		}
		for _, k := range []string{"proxy-buffering", "proxy-request-buffering"} {
			v := a["nginx.ingress.kubernetes.io/"+k]
			rep.check("k8s.ingress-streaming", v == "off", "%s: Ingress %s %s is off (got %q)", o, ing.Name, k, v)
		}
		for _, pc := range proxies[0].containers {
			if pc.binary != "gateway" {
				continue
			}
			var longest time.Duration
			for _, name := range []string{"UPSTREAM_HEADER_TIMEOUT", "UPSTREAM_IDLE_TIMEOUT"} {
				d, ok := effectiveDuration(m, pc, reads, name)
				rep.check("k8s.ingress-streaming", ok, "%s: the proxy's %s is known (%s)", o, name, d)
				longest = max(longest, d)
			}
			for _, k := range []string{"proxy-read-timeout", "proxy-send-timeout"} {
				v := a["nginx.ingress.kubernetes.io/"+k]
				n, err := strconv.Atoi(v)
				rep.check("k8s.ingress-streaming", err == nil && time.Duration(n)*time.Second > longest,
					"%s: Ingress %s %s %qs is above the gateway's upstream header and idle timeouts (%s)", o, ing.Name, k, v, longest)
			}
			limit, ok := effectiveInt(m, pc, reads, "PROXY_BODY_LIMIT_BYTES")
			rep.check("k8s.ingress-limits", ok && bodyOK && bodySize > limit,
				"%s: Ingress %s proxy-body-size %q is above the gateway's PROXY_BODY_LIMIT_BYTES %d (the gateway answers 413 itself)", o, ing.Name, a["nginx.ingress.kubernetes.io/proxy-body-size"], limit)
		}
	}
}

// nginxSize reads an nginx size ("33m", "512k", "1g", bytes); unset is
// nginx's default client_max_body_size, 1m.
func nginxSize(s string) (int64, bool) {
	if s == "" {
		s = "1m"
	}
	mult := int64(1)
	switch strings.ToLower(s[len(s)-1:]) {
	case "k":
		mult = 1 << 10
	case "m":
		mult = 1 << 20
	case "g":
		mult = 1 << 30
	}
	if mult > 1 {
		s = s[:len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n * mult, err == nil
}

// ------------------------------------------------------------ NetworkPolicies

// labelMatch is selector matching where an empty selector selects all.
func labelMatch(sel *metav1.LabelSelector, lbls map[string]string) bool {
	s, err := metav1.LabelSelectorAsSelector(sel)
	return err == nil && s.Matches(labels.Set(lbls))
}

func peerMatches(policyNS string, p networkingv1.NetworkPolicyPeer, s source) bool {
	if s.outside || p.IPBlock != nil {
		return s.outside && p.IPBlock != nil
	}
	var podLabels map[string]string
	if s.w != nil {
		podLabels = s.w.labels
	}
	podOK := p.PodSelector == nil || labelMatch(p.PodSelector, podLabels)
	if p.NamespaceSelector == nil {
		return s.ns == policyNS && podOK
	}
	return podOK && labelMatch(p.NamespaceSelector, map[string]string{"kubernetes.io/metadata.name": s.ns})
}

func ruleMatches(policyNS string, r networkingv1.NetworkPolicyIngressRule, s source) bool {
	if len(r.From) == 0 {
		return true
	}
	return slices.ContainsFunc(r.From, func(p networkingv1.NetworkPolicyPeer) bool { return peerMatches(policyNS, p, s) })
}

// rulePorts are the ports of w a rule admits.
func rulePorts(r networkingv1.NetworkPolicyIngressRule, w *workload) []int32 {
	var all []int32
	for _, c := range w.containers {
		for _, p := range c.c.Ports {
			all = append(all, p.ContainerPort)
		}
	}
	if len(r.Ports) == 0 {
		return all
	}
	var out []int32
	for _, np := range r.Ports {
		switch {
		case np.Port == nil:
			return all
		case np.Port.Type == intstr.String:
			if n, _, ok := w.containerPort(np.Port.StrVal, 0); ok {
				out = append(out, n)
			}
		default:
			end := np.Port.IntVal
			if np.EndPort != nil {
				end = *np.EndPort
			}
			for _, p := range all {
				if p >= np.Port.IntVal && p <= end {
					out = append(out, p)
				}
			}
		}
	}
	return out
}

func ingressPolicy(np *networkingv1.NetworkPolicy) bool {
	return len(np.Spec.PolicyTypes) == 0 || slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress)
}

// checkNetworkPolicies: a default deny of ingress; every flow the
// manifests need is admitted; every admission is a needed flow (least
// privilege: gRPC only from the other service, metrics only from the
// monitoring namespace, HTTP only from the ingress controller).
func checkNetworkPolicies(rep *Report, m *manifests, flows []flow) {
	o := m.overlay
	deny := slices.ContainsFunc(m.netpols, func(np *networkingv1.NetworkPolicy) bool {
		return len(np.Spec.PodSelector.MatchLabels) == 0 && len(np.Spec.PodSelector.MatchExpressions) == 0 &&
			ingressPolicy(np) && len(np.Spec.Ingress) == 0
	})
	rep.check("k8s.netpol-default-deny", deny, "%s: a NetworkPolicy denies all ingress to every pod of the namespace by default", o)

	for _, f := range flows {
		var selecting []*networkingv1.NetworkPolicy
		for _, np := range m.netpols {
			if ingressPolicy(np) && labelMatch(&np.Spec.PodSelector, f.dst.labels) {
				selecting = append(selecting, np)
			}
		}
		allowed := len(selecting) == 0
		for _, np := range selecting {
			for _, r := range np.Spec.Ingress {
				if slices.Contains(rulePorts(r, f.dst), f.port) && ruleMatches(m.ns, r, f.src) {
					allowed = true
				}
			}
		}
		rep.check("k8s.netpol-needed", allowed, "%s: NetworkPolicies admit %s to %s (%s)", o, f.src, fmtPort(f.dst, f.port), f.why)
	}

	universe := []source{{ns: ingressControllerNS}, {ns: monitoringNS}, {ns: "kube-system"}, {ns: m.ns}, {outside: true}}
	for _, w := range m.workloads {
		universe = append(universe, source{ns: m.ns, w: w})
	}
	for _, np := range m.netpols {
		if !ingressPolicy(np) {
			continue
		}
		for _, w := range m.workloads {
			if !labelMatch(&np.Spec.PodSelector, w.labels) {
				continue
			}
			for _, r := range np.Spec.Ingress {
				for _, port := range rulePorts(r, w) {
					for _, s := range universe {
						if !ruleMatches(m.ns, r, s) {
							continue
						}
						needed := slices.ContainsFunc(flows, func(f flow) bool { return f.same(s, w, port) })
						rep.check("k8s.netpol-excess", needed, "%s: NetworkPolicy %s admits %s to %s only because a flow needs it", o, np.Name, s, fmtPort(w, port))
					}
				}
			}
		}
	}
}

// ------------------------------------------------------------ Scaling

// ------------------------------------------------------------ Shared limits

// minReplicas is the fewest pods w runs: its HPA's minReplicas, else
// spec.replicas (default 1).
func (m *manifests) minReplicas(w *workload) int32 {
	for _, h := range m.hpas {
		ref := h.Spec.ScaleTargetRef
		if ref.Kind == w.kind && ref.Name == w.name {
			if h.Spec.MinReplicas != nil {
				return *h.Spec.MinReplicas
			}
			return 1
		}
	}
	if w.replicas != nil {
		return *w.replicas
	}
	return 1
}

// checkLimits: every role that applies limits shares them through one
// Redis (REDIS_URL from a Secret key that must exist: an optional key left
// out would run the limits in each replica's memory, N replicas allowing N
// times each limit), with LIMITS_REPLICAS_FALLBACK at the workload's
// minimum replica count (each replica's share while Redis is down at
// start); a role that applies none does not set REDIS_URL (no flow to
// Redis to admit).
func checkLimits(rep *Report, m *manifests) {
	o := m.overlay
	for _, c := range m.containers() {
		b, ok := binaryByName(c.binary)
		if !ok || b.limits == nil {
			continue
		}
		var redis *corev1.EnvVar
		for i := range c.c.Env {
			if c.c.Env[i].Name == "REDIS_URL" {
				redis = &c.c.Env[i]
			}
		}
		if !b.limits(c.role) {
			rep.check("k8s.redis", redis == nil, "%s: %s (%s) applies no shared limit and sets no REDIS_URL", o, c, roleOr(c.role))
			continue
		}
		ref := (*corev1.SecretKeySelector)(nil)
		if redis != nil && redis.ValueFrom != nil {
			ref = redis.ValueFrom.SecretKeyRef
		}
		val, _, known := m.envValue(c.c, "REDIS_URL")
		rep.check("k8s.redis", ref != nil && (ref.Optional == nil || !*ref.Optional) && known && val != "",
			"%s: %s takes REDIS_URL from a Secret key that is not optional and holds a URL", o, c)
		want := m.minReplicas(c.w)
		got, err := strconv.Atoi(envLiteral(c.c, "LIMITS_REPLICAS_FALLBACK"))
		rep.check("k8s.limits-fallback", err == nil && int32(got) == want,
			"%s: %s LIMITS_REPLICAS_FALLBACK %q is %s's minimum replica count %d", o, c, envLiteral(c.c, "LIMITS_REPLICAS_FALLBACK"), c.w, want)
	}
}

// checkScaling: the gateway proxy is scaled by an HPA on CPU (and its
// Deployment leaves replicas to it); every HPA targets a workload; each
// service workload has exactly one PodDisruptionBudget that still lets a
// node drain.
func checkScaling(rep *Report, m *manifests) {
	o := m.overlay
	hpaMin := map[*workload]int32{}
	for _, h := range m.hpas {
		ref := h.Spec.ScaleTargetRef
		var target *workload
		for _, w := range m.workloads {
			if w.kind == ref.Kind && w.name == ref.Name && ref.APIVersion == "apps/v1" {
				target = w
			}
		}
		if !rep.check("k8s.hpa", target != nil, "%s: HPA %s targets a workload (%s %s)", o, h.Name, ref.Kind, ref.Name) {
			continue
		}
		minR := int32(1)
		if h.Spec.MinReplicas != nil {
			minR = *h.Spec.MinReplicas
		}
		hpaMin[target] = minR
		cpu := slices.ContainsFunc(h.Spec.Metrics, func(ms autoscalingv2.MetricSpec) bool {
			return ms.Resource != nil && ms.Resource.Name == corev1.ResourceCPU && ms.Resource.Target.AverageUtilization != nil &&
				*ms.Resource.Target.AverageUtilization > 0 && *ms.Resource.Target.AverageUtilization <= 100
		})
		rep.check("k8s.hpa", cpu && minR >= 1 && h.Spec.MaxReplicas >= minR,
			"%s: HPA %s scales on CPU utilisation between %d and %d replicas", o, h.Name, minR, h.Spec.MaxReplicas)
		rep.check("k8s.hpa", target.replicas == nil, "%s: %s leaves replicas to HPA %s (no spec.replicas)", o, target, h.Name)
	}
	for _, w := range m.binaryWorkloads("gateway", roleProxy) {
		_, ok := hpaMin[w]
		rep.check("k8s.hpa", ok, "%s: the gateway proxy %s has an HPA", o, w)
	}

	for _, p := range m.pdbs {
		n := 0
		for _, w := range m.workloads {
			if selects(p.Spec.Selector, w.labels) {
				n++
			}
		}
		rep.check("k8s.pdb", n == 1, "%s: PodDisruptionBudget %s selects the pods of exactly one workload (%d)", o, p.Name, n)
	}
	for _, w := range append(m.binaryWorkloads("platform-backend", ""), m.binaryWorkloads("gateway", "")...) {
		var mine []string
		drainable := false
		replicas := int32(1)
		if w.replicas != nil {
			replicas = *w.replicas
		} else if r, ok := hpaMin[w]; ok {
			replicas = r
		}
		for _, p := range m.pdbs {
			if !selects(p.Spec.Selector, w.labels) {
				continue
			}
			mine = append(mine, p.Name)
			switch {
			case p.Spec.MaxUnavailable != nil:
				v, err := intstr.GetScaledValueFromIntOrPercent(p.Spec.MaxUnavailable, int(replicas), true)
				drainable = err == nil && v >= 1
			case p.Spec.MinAvailable != nil:
				v, err := intstr.GetScaledValueFromIntOrPercent(p.Spec.MinAvailable, int(replicas), true)
				drainable = err == nil && int32(v) < replicas
			}
		}
		rep.check("k8s.pdb", len(mine) == 1 && drainable,
			"%s: %s has one PodDisruptionBudget %v that lets a node drain (%d replicas)", o, w, mine, replicas)
	}
}
