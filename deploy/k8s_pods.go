package deploy

import (
	"context"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// checkContainer checks one container: image, probes, resources, security
// context and, for the binaries built here, their variables, listeners,
// probe routes and GOMEMLIMIT.
func checkContainer(ctx context.Context, rep *Report, repo Repo, m *manifests, c *container) {
	o := m.overlay
	img := c.c.Image
	first, _, hasSlash := strings.Cut(img, "/")
	noHost := !hasSlash || !(strings.ContainsAny(first, ".:") || first == "localhost")
	_, tag, hasTag := strings.Cut(img[strings.LastIndex(img, "/")+1:], ":")
	rep.check("k8s.images", noHost && hasTag && tag != "" && tag != "latest",
		"%s: %s image %s names no registry host and a tag other than latest", o, c, img)
	if strings.HasPrefix(img, "trueportai/") {
		rep.check("k8s.images", c.binary != "", "%s: %s image %s is one this repository builds", o, c, img)
	}

	probes := map[string]*corev1.Probe{"startup": c.c.StartupProbe, "liveness": c.c.LivenessProbe, "readiness": c.c.ReadinessProbe}
	for _, kind := range []string{"startup", "liveness", "readiness"} {
		p := probes[kind]
		ok := p != nil && (p.HTTPGet != nil || p.Exec != nil || p.TCPSocket != nil || p.GRPC != nil)
		rep.check("k8s.probes", ok, "%s: %s has a %s probe", o, c, kind)
	}

	checkResources(rep, o, c)
	checkSecurity(rep, o, c)

	if c.binary == "" {
		return
	}
	b, _ := binaryByName(c.binary)
	reads, err := binaryEnv(ctx, repo.Root, b.target)
	if !rep.check("k8s.env-read", err == nil, "%s: the variables %s reads are known (%v)", o, b.target, err) {
		return
	}
	checkEnv(rep, m, c, b, reads)
	checkListen(rep, o, c, b)
	checkProbeRoutes(rep, repo, o, c, b)
	checkReadiness(rep, o, c, b)
	checkSecretEnv(rep, o, c)
	checkGOMEMLIMIT(rep, o, c)
	checkFileEnv(rep, o, c)
}

func checkResources(rep *Report, o string, c *container) {
	r := c.c.Resources
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, hasReq := r.Requests[name]
		lim, hasLim := r.Limits[name]
		rep.check("k8s.resources", hasReq && hasLim && !req.IsZero() && req.Cmp(lim) <= 0,
			"%s: %s requests and limits %s (request %s <= limit %s)", o, c, name, req.String(), lim.String())
	}
}

func checkSecurity(rep *Report, o string, c *container) {
	sc := c.c.SecurityContext
	pod := c.w.spec.SecurityContext
	if pod == nil {
		pod = &corev1.PodSecurityContext{}
	}
	if sc == nil {
		sc = &corev1.SecurityContext{}
	}
	isTrue := func(b *bool) bool { return b != nil && *b }
	nonRoot := isTrue(sc.RunAsNonRoot) || (sc.RunAsNonRoot == nil && isTrue(pod.RunAsNonRoot))
	uid := sc.RunAsUser
	if uid == nil {
		uid = pod.RunAsUser
	}
	rep.check("k8s.security", nonRoot && (uid == nil || *uid != 0), "%s: %s runs as non-root (runAsNonRoot, uid not 0)", o, c)
	rep.check("k8s.security", isTrue(sc.ReadOnlyRootFilesystem), "%s: %s has a read-only root filesystem", o, c)
	rep.check("k8s.security", sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation && !isTrue(sc.Privileged),
		"%s: %s forbids privilege escalation and is not privileged", o, c)
	caps := sc.Capabilities
	rep.check("k8s.security", caps != nil && slices.Contains(caps.Drop, "ALL") && len(caps.Add) == 0,
		"%s: %s drops ALL capabilities and adds none", o, c)
	seccomp := sc.SeccompProfile
	if seccomp == nil {
		seccomp = pod.SeccompProfile
	}
	rep.check("k8s.security", seccomp != nil && seccomp.Type == corev1.SeccompProfileTypeRuntimeDefault,
		"%s: %s runs under the RuntimeDefault seccomp profile", o, c)
}

// checkEnv: every variable set is one the binary reads (or the Go runtime,
// or an announced one), none twice, the required ones are set.
func checkEnv(rep *Report, m *manifests, c *container, b k8sBinary, reads map[string]envRead) {
	o := m.overlay
	rep.check("k8s.env-read", len(c.c.EnvFrom) == 0, "%s: %s sets its variables by name (no envFrom: each is checked)", o, c)
	seen := map[string]bool{}
	for _, e := range c.c.Env {
		rep.check("k8s.env-unique", !seen[e.Name], "%s: %s sets %s once", o, c, e.Name)
		seen[e.Name] = true
		_, read := reads[e.Name]
		announced := slices.Contains(announcedEnv[e.Name], b.name)
		msg := ""
		switch {
		case read && announced:
			msg = " (announced, and read now: drop it from announcedEnv)"
		case announced:
			msg = " (announced: not read yet)"
		case runtimeEnv[e.Name]:
			msg = " (its Go runtime)"
		}
		rep.check("k8s.env-read", read || announced || runtimeEnv[e.Name], "%s: %s sets %s, a variable %s reads%s", o, c, e.Name, b.name, msg)
	}
	required := slices.Clone(b.required[c.role])
	if envLiteral(c.c, "APP_ENV") == "prod" {
		required = append(required, b.requiredProd...)
	}
	for _, name := range required {
		rep.check("k8s.env-required", seen[name], "%s: %s sets %s", o, c, name)
	}
	if v := envLiteral(c.c, "APP_ENV"); seen["APP_ENV"] {
		rep.check("k8s.env-required", v == "dev" || v == "prod", "%s: %s APP_ENV=%q is dev or prod", o, c, v)
	}
}

// checkListen: each listen address of the role listens on every interface
// on a port the container declares under the listener's name, and every
// declared port is one of them.
func checkListen(rep *Report, o string, c *container, b k8sBinary) {
	listen := b.listen[c.role]
	declared := map[int32]bool{}
	for _, name := range slices.Sorted(mapsKeys(listen)) {
		portName := listen[name]
		addr := envLiteral(c.c, name)
		h, p, err := net.SplitHostPort(addr)
		n, perr := strconv.Atoi(p)
		if !rep.check("k8s.listen", err == nil && perr == nil && (h == "0.0.0.0" || h == "" || h == "::"),
			"%s: %s %s=%q listens on every interface", o, c, name, addr) {
			continue
		}
		ok := slices.ContainsFunc(c.c.Ports, func(cp corev1.ContainerPort) bool {
			return cp.Name == portName && cp.ContainerPort == int32(n)
		})
		declared[int32(n)] = true
		rep.check("k8s.listen", ok, "%s: %s declares port %s = %d (%s)", o, c, portName, n, name)
	}
	for _, cp := range c.c.Ports {
		rep.check("k8s.listen", declared[cp.ContainerPort], "%s: %s port %s (%d) is one its listen addresses opens", o, c, cp.Name, cp.ContainerPort)
	}
}

// checkProbeRoutes: HTTP probes GET a route the binary serves in its role,
// on its HTTP listener.
func checkProbeRoutes(rep *Report, repo Repo, o string, c *container, b k8sBinary) {
	routes, err := servedRoutes(repo, b.name, c.role)
	if !rep.check("k8s.probe-route", err == nil && len(routes) > 0, "%s: %s's route table reads (%v)", o, b.name, err) {
		return
	}
	httpPort := int32(-1)
	for _, cp := range c.c.Ports {
		if cp.Name == "http" {
			httpPort = cp.ContainerPort
		}
	}
	for _, kp := range []struct {
		kind string
		p    *corev1.Probe
	}{{"startup", c.c.StartupProbe}, {"liveness", c.c.LivenessProbe}, {"readiness", c.c.ReadinessProbe}} {
		kind, p := kp.kind, kp.p
		if p == nil {
			continue
		}
		g := p.HTTPGet
		if !rep.check("k8s.probe-route", g != nil, "%s: %s %s probe is an HTTP GET", o, c, kind) {
			continue
		}
		path, _, _ := strings.Cut(g.Path, "?")
		served := slices.ContainsFunc(routes, func(r route) bool {
			return (r.method == "GET" || r.method == "ANY") && matchEchoPath(r.path, path)
		})
		rep.check("k8s.probe-route", served, "%s: %s %s probe path %s is a GET route of %s (%s)", o, c, kind, g.Path, b.name, roleOr(c.role))
		port := g.Port.IntVal
		if g.Port.StrVal != "" {
			port = -2
			for _, cp := range c.c.Ports {
				if cp.Name == g.Port.StrVal {
					port = cp.ContainerPort
				}
			}
		}
		rep.check("k8s.probe-route", port == httpPort, "%s: %s %s probe targets the HTTP listener (port %s)", o, c, kind, g.Port.String())
	}
}

// checkReadiness: a pod a Service routes to is ready by its local
// readiness route, never by one that checks a dependency (an outage of
// Postgres, NATS or Redis is every replica's at once: the Service would
// lose every endpoint) nor by liveness (it never turns false when the
// process drains).
func checkReadiness(rep *Report, o string, c *container, b k8sBinary) {
	if b.readiness == "" || b.serving == nil || !b.serving(c.role) {
		return
	}
	p := c.c.ReadinessProbe
	path := ""
	if p != nil && p.HTTPGet != nil {
		path, _, _ = strings.Cut(p.HTTPGet.Path, "?")
	}
	rep.check("k8s.readiness-local", path == b.readiness,
		"%s: %s readiness probe %q is its local readiness route %s (draining only, no dependency)", o, c, path, b.readiness)
}

// checkSecretEnv: variables carrying credentials come from a Secret.
func checkSecretEnv(rep *Report, o string, c *container) {
	for _, e := range c.c.Env {
		if !slices.Contains(secretEnv, e.Name) {
			continue
		}
		ok := e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil
		rep.check("k8s.secret-env", ok, "%s: %s takes %s from a Secret (secretKeyRef)", o, c, e.Name)
	}
}

func roleOr(role string) string {
	if role == "" {
		return "its only role"
	}
	return "role " + role
}

// matchEchoPath reports whether echo route pattern matches request path p.
func matchEchoPath(pattern, p string) bool {
	ps, rs := strings.Split(pattern, "/"), strings.Split(p, "/")
	for i, s := range ps {
		if s == "*" {
			return true
		}
		if i >= len(rs) {
			return false
		}
		if !strings.HasPrefix(s, ":") && s != rs[i] {
			return false
		}
		if strings.HasPrefix(s, ":") && rs[i] == "" {
			return false
		}
	}
	return len(ps) == len(rs)
}

// checkGOMEMLIMIT: the Go runtime's soft memory limit follows the
// container's memory limit (resourceFieldRef), so the GC works harder
// before the kernel kills.
func checkGOMEMLIMIT(rep *Report, o string, c *container) {
	ok := false
	for _, e := range c.c.Env {
		if e.Name == "GOMEMLIMIT" && e.ValueFrom != nil && e.ValueFrom.ResourceFieldRef != nil {
			r := e.ValueFrom.ResourceFieldRef
			one := resource.MustParse("1")
			ok = r.Resource == "limits.memory" && (r.ContainerName == "" || r.ContainerName == c.c.Name) &&
				(r.Divisor.IsZero() || r.Divisor.Cmp(one) == 0)
		}
	}
	_, hasLimit := c.c.Resources.Limits[corev1.ResourceMemory]
	rep.check("k8s.gomemlimit", ok && hasLimit, "%s: %s GOMEMLIMIT is its limits.memory in bytes (resourceFieldRef)", o, c)
}

// checkFileEnv: a variable naming files (…_FILE, …_FILES) points into a
// volume mounted in the container.
func checkFileEnv(rep *Report, o string, c *container) {
	for _, e := range c.c.Env {
		if !strings.HasSuffix(e.Name, "_FILE") && !strings.HasSuffix(e.Name, "_FILES") {
			continue
		}
		for f := range strings.SplitSeq(e.Value, ",") {
			if f = strings.TrimSpace(f); f == "" {
				continue
			}
			mounted := slices.ContainsFunc(c.c.VolumeMounts, func(vm corev1.VolumeMount) bool {
				return strings.HasPrefix(f, strings.TrimSuffix(vm.MountPath, "/")+"/")
			})
			rep.check("k8s.file-env", mounted, "%s: %s %s=%s lies in a mounted volume", o, c, e.Name, f)
		}
	}
}

// checkPod checks the pod template of w: its selector, hygiene, volumes,
// the shutdown budget and, for the gateway proxy, the spool volume.
func checkPod(ctx context.Context, rep *Report, repo Repo, m *manifests, w *workload) {
	o := m.overlay
	rep.check("k8s.selector", selects(w.selector, w.labels), "%s: %s selector selects its own pod template", o, w)
	automount := w.spec.AutomountServiceAccountToken
	rep.check("k8s.pod-hygiene", automount != nil && !*automount, "%s: %s mounts no service account token", o, w)
	links := w.spec.EnableServiceLinks
	rep.check("k8s.pod-hygiene", links != nil && !*links, "%s: %s has no service-link variables (enableServiceLinks: false)", o, w)

	volumes := map[string]*corev1.Volume{}
	for i := range w.spec.Volumes {
		volumes[w.spec.Volumes[i].Name] = &w.spec.Volumes[i]
	}
	for _, c := range w.containers {
		for _, vm := range c.c.VolumeMounts {
			_, ok := volumes[vm.Name]
			if !ok && w.kind == "StatefulSet" {
				ok = true // a volumeClaimTemplate: kustomize and the API server check the name
			}
			rep.check("k8s.volumes", ok, "%s: %s mounts volume %s, which the pod defines", o, c, vm.Name)
		}
	}

	for _, c := range w.containers {
		if c.binary == "" {
			continue
		}
		b, _ := binaryByName(c.binary)
		reads, err := binaryEnv(ctx, repo.Root, b.target)
		if err != nil {
			continue // reported by checkContainer
		}
		if b.shutdown != nil {
			checkShutdown(rep, m, c, b, reads)
		}
		if c.binary == "gateway" && c.role == roleProxy {
			checkSpool(rep, m, c, volumes, reads)
		}
	}
}

// effectiveDuration is the variable's value in c, else the code's default.
func effectiveDuration(m *manifests, c *container, reads map[string]envRead, name string) (time.Duration, bool) {
	v, set, known := m.envValue(c.c, name)
	if !set {
		v, known = reads[name].def, true
	}
	d, err := time.ParseDuration(v)
	return d, known && err == nil
}

func effectiveInt(m *manifests, c *container, reads map[string]envRead, name string) (int64, bool) {
	v, set, known := m.envValue(c.c, name)
	if !set {
		v, known = reads[name].def, true
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return n, known && err == nil
}

// checkShutdown: the grace period covers the preStop drain delay, the
// process's shutdown (from SHUTDOWN_GRACE) and a margin; serving pods have
// the drain delay.
func checkShutdown(rep *Report, m *manifests, c *container, b k8sBinary, reads map[string]envRead) {
	o := m.overlay
	var sleep time.Duration
	if l := c.c.Lifecycle; l != nil && l.PreStop != nil && l.PreStop.Sleep != nil {
		sleep = time.Duration(l.PreStop.Sleep.Seconds) * time.Second
	}
	if b.serving(c.role) {
		rep.check("k8s.drain", sleep > 0, "%s: %s has a preStop sleep (drain delay: endpoints and the ingress catch up before the listener closes)", o, c)
	}
	grace, ok := effectiveDuration(m, c, reads, "SHUTDOWN_GRACE")
	tgps := time.Duration(corev1.DefaultTerminationGracePeriodSeconds) * time.Second
	if s := c.w.spec.TerminationGracePeriodSeconds; s != nil {
		tgps = time.Duration(*s) * time.Second
	}
	need := sleep + b.shutdown(c.role, grace) + drainMargin
	rep.check("k8s.shutdown", ok && tgps >= need,
		"%s: %s terminationGracePeriodSeconds %s >= preStop %s + shutdown %s (SHUTDOWN_GRACE %s) + margin %s",
		o, c, tgps, sleep, b.shutdown(c.role, grace), grace, drainMargin)
}

// checkSpool: the proxy's spool directory is a writable volume large
// enough for GATEWAY_SPOOL_MAX_BYTES.
func checkSpool(rep *Report, m *manifests, c *container, volumes map[string]*corev1.Volume, reads map[string]envRead) {
	o := m.overlay
	dir := envLiteral(c.c, "GATEWAY_SPOOL_DIR")
	maxBytes, _ := effectiveInt(m, c, reads, "GATEWAY_SPOOL_MAX_BYTES")
	ok := false
	what := "no volume"
	for _, vm := range c.c.VolumeMounts {
		if strings.TrimSuffix(vm.MountPath, "/") != strings.TrimSuffix(dir, "/") || vm.ReadOnly {
			continue
		}
		v := volumes[vm.Name]
		switch {
		case v == nil:
		case v.EmptyDir != nil:
			what = "emptyDir"
			ok = v.EmptyDir.SizeLimit != nil && v.EmptyDir.SizeLimit.Value() > maxBytes
			if v.EmptyDir.SizeLimit != nil {
				what += " of " + v.EmptyDir.SizeLimit.String()
			}
		case v.PersistentVolumeClaim != nil || v.Ephemeral != nil:
			what, ok = "a claim", true
		}
	}
	rep.check("k8s.spool", dir != "" && ok, "%s: %s GATEWAY_SPOOL_DIR=%s is a writable volume (%s) above GATEWAY_SPOOL_MAX_BYTES %d", o, c, dir, what, maxBytes)
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
