package deploy

// The edge of docker-compose.yml: an nginx container that routes paths as
// CloudFront and the Ingress do, over every replica of the gateway. Its
// configuration (deploy/edge/nginx.conf) is read with the nginx reader of
// nginx.go and checked against both services' route tables and the compose
// file: which paths reach which service, that replicas are re-resolved,
// that streams are not buffered, and that the client's address is set by
// the edge and believed by the platform from the edge only.

import (
	"context"
	"net/netip"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
)

// nginxVersion reads the version of an nginx image tag ("1.28-alpine" ->
// [1 28]).
func nginxVersion(image string) ([]int, bool) {
	name, tag, ok := strings.Cut(image, ":")
	if !ok || name != "nginx" {
		return nil, false
	}
	tag, _, _ = strings.Cut(tag, "-")
	var v []int
	for p := range strings.SplitSeq(tag, ".") {
		n, err := strconv.Atoi(p)
		if err != nil {
			return nil, false
		}
		v = append(v, n)
	}
	return v, len(v) >= 2
}

// versionAtLeast compares versions, missing components as 0 (a tag "1.27"
// may be any 1.27.x, so it counts as 1.27.0).
func versionAtLeast(v, min []int) bool {
	for i := range max(len(v), len(min)) {
		a, b := 0, 0
		if i < len(v) {
			a = v[i]
		}
		if i < len(min) {
			b = min[i]
		}
		if a != b {
			return a > b
		}
	}
	return true
}

// parsePrefixes reads TRUSTED_PROXIES as the platform does: a comma list of
// CIDRs or addresses.
func parsePrefixes(s string) ([]netip.Prefix, bool) {
	var out []netip.Prefix
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, false
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, true
}

// checkEdge checks the edge service and its nginx configuration. listen
// holds each Go service's listen ports by variable.
func checkEdge(ctx context.Context, rep *Report, repo Repo, p *types.Project, listen map[string]map[string]int) {
	edge, ok := p.Services[edgeService]
	if !ok {
		return // compose.services reports it
	}
	v, ok := nginxVersion(edge.Image)
	rep.check("compose.edge-image", ok && versionAtLeast(v, edgeMinNginx),
		"edge image %q is nginx >= 1.27.3 (the upstream server's resolve parameter)", edge.Image)

	// The configuration: a read-only bind mount of a file in the repository.
	var confRel string
	for _, vol := range edge.Volumes {
		if vol.Target != edgeConfigTarget {
			continue
		}
		rel, err := filepath.Rel(repo.Root, vol.Source)
		if err == nil && vol.Type == types.VolumeTypeBind && vol.ReadOnly && !strings.HasPrefix(rel, "..") && repo.isFile(rel) {
			confRel = filepath.ToSlash(rel)
		}
	}
	if !rep.check("compose.edge-config", confRel != "", "edge mounts a file of the repository read-only on %s (%s)", edgeConfigTarget, confRel) {
		return
	}
	data, err := repo.read(confRel)
	var conf []*ngxDirective
	if err == nil {
		conf, err = parseNginx(string(data))
	}
	if !rep.check("edge.parse", err == nil, "%s parses, every directive one nginx has where it stands (%v)", confRel, err) {
		return
	}
	servers := ngxServers(conf)
	if !rep.check("edge.parse", len(servers) == 1, "%s has one server block (%d)", confRel, len(servers)) {
		return
	}
	srv := servers[0]

	// Listening and published.
	listens := ngxFind(srv.d.block, "listen")
	port := 0
	if len(listens) == 1 {
		port, _ = strconv.Atoi(listens[0].args[0])
	}
	if rep.check("edge.listen", port > 0, "the edge's server listens on one port (%d)", port) {
		published := slices.ContainsFunc(edge.Ports, func(pc types.ServicePortConfig) bool { return int(pc.Target) == port && pc.Published != "" })
		rep.check("compose.edge-published", published, "edge publishes its port %d", port)
	}

	checkEdgeTrust(rep, p, edge)

	// Docker's DNS, re-asked often.
	resolverOK := false
	for _, r := range ngxFind(srv.http, "resolver") {
		valid := time.Duration(-1)
		for _, a := range r.args[1:] {
			if s, ok := strings.CutPrefix(a, "valid="); ok {
				valid, _ = ngxTime(s)
			}
		}
		resolverOK = r.args[0] == composeDNS && valid > 0 && valid <= edgeMaxValid
	}
	rep.check("edge.resolve", resolverOK, "http resolver is Docker's DNS %s with valid= at most %s (scaled replicas are seen)", composeDNS, edgeMaxValid)

	// Locations: prefixes and exact paths only (the checks model no
	// regular expression).
	for _, l := range srv.locations {
		mod, _ := l.match()
		rep.check("edge.parse", mod == "" || mod == "=" || mod == "^~", "location %s is a prefix or an exact path", strings.Join(l.d.args, " "))
	}

	// Every public route reaches its service; nothing else reaches any.
	for _, b := range k8sBinaries {
		if len(b.edges) == 0 {
			continue
		}
		role := ""
		if slices.Contains(b.roles, roleProxy) {
			role = roleProxy
		}
		routes, err := servedRoutes(repo, b.name, role)
		if !rep.check("edge.routes", err == nil && len(routes) > 0, "%s's route table reads (%v)", b.name, err) {
			continue
		}
		svcName := edgeBackends[b.name]
		for _, r := range routes {
			path := samplePath(r.path)
			loc := srv.locationFor(path)
			if ok, prefix := b.underEdge(path); !ok {
				rep.check("edge.internal", edgeRefuses(loc), "%s %s (not under %s) is answered 404 by the edge", b.name, r.path, prefix)
				continue
			}
			got, want := "nothing", svcName+":"+strconv.Itoa(listen[svcName][httpAddrVar(b.name)])
			if t := edgeTargets(srv, ptrOr(loc)); len(t) > 0 {
				got = strings.Join(t, ",")
			}
			rep.check("edge.routes", got == want, "%s %s %s reaches %s through the edge (got %s)", b.name, r.method, r.path, want, got)
		}
	}
	for _, path := range append(slices.Clone(internalPaths), "/health", "/health/ready", "/health/ready/local", "/") {
		rep.check("edge.internal", edgeRefuses(srv.locationFor(path)), "%s is answered 404 by the edge", path)
	}

	gw, _ := p.Services["gateway"]
	gwEnv := envOf(gw)
	reads, err := binaryEnv(ctx, repo.Root, "./services/gateway/cmd/gateway")
	if !rep.check("edge.streaming", err == nil, "the gateway's variables are known (%v)", err) {
		return
	}
	effective := func(name string) string {
		if v, ok := gwEnv[name]; ok {
			return v
		}
		return reads[name].def
	}
	for _, l := range srv.locations {
		pass := l.value("proxy_pass")
		if pass == "" {
			continue
		}
		where := "location " + strings.Join(l.d.args, " ")
		u, err := url.Parse(pass)
		rep.check("edge.verbatim-uri", err == nil && u.Scheme == "http" && u.Path == "" && u.RawQuery == "",
			"%s proxy_pass %s has no URI: the path goes on as the client sent it (the services' own path checks see it)", where, pass)
		if err == nil {
			up := srv.upstream(u.Host)
			ok := up != nil && len(ngxFind(up.block, "zone")) == 1 && len(ngxFind(up.block, "server")) > 0
			if up != nil {
				for _, s := range ngxFind(up.block, "server") {
					h, _, _ := strings.Cut(s.args[0], ":")
					_, notName := netip.ParseAddr(h)
					ok = ok && slices.Contains(s.args[1:], "resolve") && notName != nil
				}
			}
			rep.check("edge.resolve", ok, "%s proxies to an upstream in shared memory (zone) whose servers are service names with resolve (re-resolved, every replica a peer)", where)
		}

		// The client's address: set from the peer, never passed on.
		cfv, _ := l.header("CloudFront-Viewer-Address")
		xff, _ := l.header("X-Forwarded-For")
		rep.check("edge.client-address", strings.HasPrefix(cfv, "$remote_addr") && (xff == "$proxy_add_x_forwarded_for" || xff == "$remote_addr"),
			"%s sets CloudFront-Viewer-Address (%q) and X-Forwarded-For (%q) from the peer's address", where, cfv, xff)

		targets := edgeTargets(srv, l)
		toGateway := slices.ContainsFunc(targets, func(t string) bool { return strings.HasPrefix(t, edgeBackends["gateway"]+":") })
		toPlatform := slices.ContainsFunc(targets, func(t string) bool { return strings.HasPrefix(t, edgeBackends["platform-backend"]+":") })
		bodyText := l.value("client_max_body_size")
		body, bodyOK := nginxSize(bodyText)
		if toPlatform {
			rep.check("edge.limits", bodyOK && body > restBodyLimit, "%s client_max_body_size %q is above the platform's 1 MiB (the platform answers 413 itself)", where, bodyText)
		}
		if !toGateway {
			continue
		}
		for _, k := range []string{"proxy_buffering", "proxy_request_buffering"} {
			rep.check("edge.streaming", l.value(k) == "off", "%s %s is off (got %q)", where, k, l.value(k))
		}
		rep.check("edge.streaming", l.value("proxy_http_version") == "1.1", "%s proxy_http_version is 1.1 (else a chunked body is buffered whole)", where)
		rep.check("edge.streaming", l.value("gzip") != "on", "%s does not compress (streams pass as sent)", where)
		var longest time.Duration
		for _, name := range []string{"UPSTREAM_HEADER_TIMEOUT", "UPSTREAM_IDLE_TIMEOUT"} {
			d, err := time.ParseDuration(effective(name))
			rep.check("edge.streaming", err == nil, "the gateway's %s is known (%s)", name, effective(name))
			longest = max(longest, d)
		}
		for _, k := range []string{"proxy_read_timeout", "proxy_send_timeout"} {
			d, ok := ngxTime(l.value(k))
			if l.value(k) == "" {
				d, ok = 60*time.Second, true // nginx's default
			}
			rep.check("edge.streaming", ok && d > longest, "%s %s %s is above the gateway's upstream header and idle timeouts (%s)", where, k, d, longest)
		}
		limit, err := strconv.ParseInt(effective("PROXY_BODY_LIMIT_BYTES"), 10, 64)
		rep.check("edge.limits", err == nil && bodyOK && body > limit,
			"%s client_max_body_size %q is above the gateway's PROXY_BODY_LIMIT_BYTES %d (the gateway answers 413 itself)", where, bodyText, limit)
	}

	// The edge starts after the services it routes to.
	for _, svcName := range edgeBackends {
		_, dep := edge.DependsOn[svcName]
		rep.check("compose.depends-on", dep, "edge depends_on %s", svcName)
	}
}

// ptrOr dereferences a location that may be nil (no location: no
// proxy_pass).
func ptrOr(l *ngxLocation) ngxLocation {
	if l == nil {
		return ngxLocation{d: &ngxDirective{}}
	}
	return *l
}

// httpAddrVar is the variable of a binary's HTTP listen address.
func httpAddrVar(binary string) string {
	if binary == "platform-backend" {
		return "PLATFORM_HTTP_ADDR"
	}
	return "GATEWAY_HTTP_ADDR"
}

// edgeRefuses reports whether a request matched to loc is answered 404
// by the edge itself (no location matches: nginx's 404 too).
func edgeRefuses(loc *ngxLocation) bool {
	if loc == nil {
		return true
	}
	if loc.value("proxy_pass") != "" {
		return false
	}
	r := ngxFind(loc.d.block, "return")
	return len(r) == 1 && r[0].args[0] == "404"
}

// edgeTargets are the host:port servers a location proxies to (through an
// upstream block, or the proxy_pass address itself).
func edgeTargets(srv ngxServer, l ngxLocation) []string {
	pass := l.value("proxy_pass")
	if pass == "" {
		return nil
	}
	u, err := url.Parse(pass)
	if err != nil {
		return []string{pass}
	}
	up := srv.upstream(u.Host)
	if up == nil {
		return []string{u.Host}
	}
	var out []string
	for _, s := range ngxFind(up.block, "server") {
		out = append(out, s.args[0])
	}
	return out
}

// checkEdgeTrust: the edge has a fixed address in the compose network,
// outside the range Docker gives other containers (no replica can take it),
// and the platform believes client-address headers from that address only:
// not from the network's gateway (where calls on a published port come
// from) nor from any other container.
func checkEdgeTrust(rep *Report, p *types.Project, edge types.ServiceConfig) {
	var addr netip.Addr
	if nc := edge.Networks["default"]; nc != nil {
		addr, _ = netip.ParseAddr(nc.Ipv4Address)
	}
	var subnet, dynamic netip.Prefix
	if n, ok := p.Networks["default"]; ok && len(n.Ipam.Config) == 1 {
		subnet, _ = netip.ParsePrefix(n.Ipam.Config[0].Subnet)
		dynamic, _ = netip.ParsePrefix(n.Ipam.Config[0].IPRange)
	}
	fixed := addr.IsValid() && subnet.IsValid() && dynamic.IsValid() && subnet.Contains(addr) && !dynamic.Contains(addr)
	rep.check("compose.edge-address", fixed, "edge has a fixed ipv4_address %s in the default network %s, outside its ip_range %s", addr, subnet, dynamic)
	plat, ok := p.Services["platform-backend"]
	if !ok || !fixed {
		return
	}
	prefixes, ok := parsePrefixes(envOf(plat)["TRUSTED_PROXIES"])
	edgeP := netip.PrefixFrom(addr, addr.BitLen())
	exact := ok && slices.Contains(prefixes, edgeP)
	for _, pr := range prefixes {
		if pr.Overlaps(subnet) && pr != edgeP {
			exact = false
		}
	}
	rep.check("compose.trusted-proxies", exact, "platform-backend TRUSTED_PROXIES %q trusts the edge %s and no other address of %s",
		envOf(plat)["TRUSTED_PROXIES"], addr, subnet)
}
