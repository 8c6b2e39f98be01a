package deploy

import (
	"context"
	"maps"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

// loadCompose loads docker-compose.yml with the compose-spec loader: schema
// validation, normalisation and the consistency checks of docker compose
// config. Interpolation sees an empty environment.
func loadCompose(ctx context.Context, repo Repo) (*types.Project, error) {
	data, err := repo.read("docker-compose.yml")
	if err != nil {
		return nil, err
	}
	details := types.ConfigDetails{
		WorkingDir:  repo.Root,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(repo.Root, "docker-compose.yml"), Content: data}},
		Environment: types.Mapping{},
	}
	return loader.LoadWithContext(ctx, details, func(o *loader.Options) {
		o.SetProjectName("trueportai", false) // the file's own name: wins
	})
}

func envOf(s types.ServiceConfig) map[string]string {
	out := map[string]string{}
	for k, v := range s.Environment {
		if v != nil {
			out[k] = *v
		} else {
			out[k] = ""
		}
	}
	return out
}

func hasHealthcheck(s types.ServiceConfig) bool {
	return s.HealthCheck != nil && !s.HealthCheck.Disable && len(s.HealthCheck.Test) > 0
}

// hostPort splits "host:port"; ok is false without a numeric port.
func hostPort(addr string) (host string, port int, ok bool) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, false
	}
	n, err := strconv.Atoi(p)
	return h, n, err == nil
}

func urlPort(u *url.URL, def int) int {
	if p, err := strconv.Atoi(u.Port()); err == nil {
		return p
	}
	return def
}

func checkCompose(ctx context.Context, rep *Report, repo Repo, exposed map[string][]int) {
	p, err := loadCompose(ctx, repo)
	if !rep.check("compose.valid", err == nil, "docker-compose.yml loads and validates against the compose spec (%v)", err) {
		return
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range p.Services {
			if !yield(n) {
				return
			}
		}
	})
	want := slices.Sorted(slices.Values(composeServices))
	rep.check("compose.services", slices.Equal(names, want), "services %v (want %v)", names, want)
	svc := func(n string) (types.ServiceConfig, bool) { s, ok := p.Services[n]; return s, ok }

	// postgres
	pg, _ := svc("postgres")
	pgEnv := envOf(pg)
	pgUser, pgPass := pgEnv["POSTGRES_USER"], pgEnv["POSTGRES_PASSWORD"]
	if pgUser == "" {
		pgUser = "postgres"
	}
	rep.check("compose.postgres-image", strings.HasPrefix(pg.Image, "postgres:15"), "postgres image %q is postgres:15", pg.Image)
	rep.check("compose.postgres-auth", pgPass != "" || pgEnv["POSTGRES_HOST_AUTH_METHOD"] == "trust", "postgres has a password or trust auth")
	rep.check("compose.postgres-healthcheck", hasHealthcheck(pg) && slices.Contains(pg.HealthCheck.Test, "pg_isready"),
		"postgres healthcheck uses pg_isready")
	for k := range pgEnv {
		rep.check("compose.postgres-env", strings.HasPrefix(k, "POSTGRES_"), "postgres env %s is a POSTGRES_ variable", k)
	}

	// nats
	nats, _ := svc("nats")
	cmd := []string(nats.Command)
	rep.check("compose.nats-image", strings.HasPrefix(nats.Image, "nats:2.10"), "nats image %q is nats:2.10", nats.Image)
	rep.check("compose.nats-jetstream", slices.Contains(cmd, "-js") && slices.Contains(cmd, "-sd"),
		"nats runs with JetStream and a store dir (%s)", strings.Join(cmd, " "))
	if hasHealthcheck(nats) {
		rep.check("compose.nats-monitoring", slices.Contains(cmd, "-m") || slices.Contains(cmd, "--http_port"),
			"nats monitoring port enabled for its healthcheck")
		rep.check("compose.nats-healthcheck-tool", strings.Contains(nats.Image, "alpine") || nats.HealthCheck.Test[0] != "CMD-SHELL",
			"nats healthcheck runs in an image that has a shell and wget (%s)", nats.Image)
	}

	// redis: the store of the limits the replicas share.
	redis, _ := svc("redis")
	rep.check("compose.redis-image", strings.HasPrefix(redis.Image, "redis:7"), "redis image %q is redis:7", redis.Image)
	rep.check("compose.redis-healthcheck", hasHealthcheck(redis) && slices.Contains(redis.HealthCheck.Test, "redis-cli") && slices.Contains(redis.HealthCheck.Test, "ping"),
		"redis healthcheck runs redis-cli ping")

	// The Go services.
	listen := map[string]map[string]int{}
	for _, gs := range goServices {
		s, ok := svc(gs.name)
		if !ok {
			continue
		}
		env := envOf(s)
		var bctx, dfile string
		if s.Build != nil {
			bctx, dfile = s.Build.Context, s.Build.Dockerfile
		}
		rep.check("compose.build-context", filepath.Clean(bctx) == filepath.Clean(repo.Root), "%s build context %s is the repo root", gs.name, bctx)
		rep.check("compose.dockerfile", dfile == gs.dockerfile && repo.isFile(dfile), "%s dockerfile %s (want %s) exists", gs.name, dfile, gs.dockerfile)
		rep.check("compose.no-healthcheck", !hasHealthcheck(s), "%s has no container healthcheck (distroless: no shell, no curl)", gs.name)
		for _, name := range slices.Sorted(func(yield func(string) bool) {
			for k := range env {
				if !yield(k) {
					return
				}
			}
		}) {
			rep.check("compose.env-contract", contract[name], "%s env %s is in the run contract", gs.name, name)
			rep.check("compose.env-read", readsVar(ctx, repo, gs.target, name), "%s env %s is read by %s", gs.name, name, gs.target)
		}
		for _, name := range gs.required {
			_, ok := env[name]
			rep.check("compose.env-required", ok, "%s sets %s", gs.name, name)
		}
		_, setsRedis := env["REDIS_URL"]
		rep.check("compose.redis-unused", gs.limits || !setsRedis, "%s sets REDIS_URL only if it applies shared limits (limits %t, sets it %t)", gs.name, gs.limits, setsRedis)
		if gs.scalable {
			checkScalable(rep, s, gs)
		}
		checkStopGrace(ctx, rep, repo, s, gs, env)
		if v, ok := env["APP_ENV"]; ok {
			rep.check("compose.app-env-dev", v == "dev", "%s APP_ENV=%s is dev (keys generated; no key files in compose)", gs.name, v)
		}
		listen[gs.name] = map[string]int{}
		for _, name := range gs.listen {
			h, port, ok := hostPort(env[name])
			if rep.check("compose.listen-all", ok && (h == "0.0.0.0" || h == ""), "%s %s=%s listens on all interfaces", gs.name, name, env[name]) {
				listen[gs.name][name] = port
				rep.check("compose.listen-exposed", slices.Contains(exposed[gs.image], port),
					"%s port %d is EXPOSEd in %s", gs.name, port, gs.dockerfile)
			}
		}
		for _, name := range gs.publish {
			port := listen[gs.name][name]
			published := false
			for _, pc := range s.Ports {
				if int(pc.Target) == port && pc.Published != "" {
					published = true
				}
			}
			rep.check("compose.published", published, "%s publishes its %s port %d", gs.name, name, port)
		}
		// Internal listeners (metrics, pprof): reachable inside the compose
		// network, never from the host.
		for _, name := range gs.internal {
			_, port, ok := hostPort(env[name])
			clash := slices.Contains(slices.Collect(maps.Values(listen[gs.name])), port)
			if !rep.check("compose.internal-addr", ok && !clash, "%s %s=%s is host:port, apart from its public ports", gs.name, name, env[name]) {
				continue
			}
			published := false
			for _, pc := range s.Ports {
				if int(pc.Target) == port {
					published = true
				}
			}
			rep.check("compose.internal-unpublished", !published, "%s does not publish its internal %s port %d", gs.name, name, port)
			rep.check("compose.internal-not-exposed", !slices.Contains(exposed[gs.image], port),
				"%s internal port %d is not EXPOSEd in %s (docker run -P would publish it)", gs.name, port, gs.dockerfile)
		}
	}

	// Dial addresses point at compose services, their ports, and depend on
	// them (but the platform, which the gateway depends on, dials the
	// gateway's gRPC lazily: a dependency back would be a cycle).
	dial := func(from, name, host string, port int, to string, toPort int) {
		_, known := p.Services[host]
		rep.check("compose.dial-host", host == to && known, "%s %s host %s is the %s service", from, name, host, to)
		rep.check("compose.dial-port", port == toPort, "%s %s port %d is %s's %d", from, name, port, to, toPort)
		if known && name != "GATEWAY_GRPC_ADDR" {
			_, dep := p.Services[from].DependsOn[host]
			rep.check("compose.depends-on", dep, "%s depends_on %s", from, host)
		}
	}
	fakePort := listen["fake-provider"]["FAKE_PROVIDER_ADDR"]
	platGRPC := listen["platform-backend"]["PLATFORM_GRPC_ADDR"]
	gwGRPC := listen["gateway"]["GATEWAY_GRPC_ADDR"]
	for _, gs := range goServices {
		s, ok := svc(gs.name)
		if !ok || gs.name == "fake-provider" {
			continue
		}
		env := envOf(s)
		for _, name := range slices.Sorted(func(yield func(string) bool) {
			for k := range env {
				if !yield(k) {
					return
				}
			}
		}) {
			val := env[name]
			switch {
			case strings.HasSuffix(name, "_DATABASE_URL"):
				u, err := url.Parse(val)
				if !rep.check("compose.url", err == nil, "%s %s is a URL", gs.name, name) {
					continue
				}
				dial(gs.name, name, u.Hostname(), urlPort(u, 5432), "postgres", 5432)
				pass, _ := u.User.Password()
				rep.check("compose.db-credentials", u.User.Username() == pgUser && pass == pgPass, "%s %s credentials match postgres's", gs.name, name)
				rep.check("compose.db-name", strings.Trim(u.Path, "/") != "", "%s %s names a database (%s)", gs.name, name, u.Path)
			case name == "NATS_URL":
				u, err := url.Parse(val)
				if !rep.check("compose.url", err == nil, "%s %s is a URL", gs.name, name) {
					continue
				}
				dial(gs.name, name, u.Hostname(), urlPort(u, 4222), "nats", 4222)
			case name == "REDIS_URL":
				u, err := url.Parse(val)
				if !rep.check("compose.url", err == nil && u.Scheme == "redis", "%s %s is a redis:// URL", gs.name, name) {
					continue
				}
				dial(gs.name, name, u.Hostname(), urlPort(u, 6379), "redis", 6379)
			case name == "GATEWAY_GRPC_ADDR" && gs.name == "platform-backend":
				h, port, _ := hostPort(val)
				dial(gs.name, name, h, port, "gateway", gwGRPC)
			case strings.HasPrefix(name, "UPSTREAM_"):
				u, err := url.Parse(strings.NewReplacer("{resource}", "r", "{deployment}", "d").Replace(val))
				ok := err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Hostname() != ""
				if rep.check("compose.upstream-url", ok, "%s %s=%s is an http(s) URL", gs.name, name, val) {
					if _, known := p.Services[u.Hostname()]; known {
						dial(gs.name, name, u.Hostname(), urlPort(u, 80), "fake-provider", fakePort)
					}
				}
			case name == "PLATFORM_GRPC_ADDR" && gs.name != "platform-backend":
				h, port, _ := hostPort(val)
				dial(gs.name, name, h, port, "platform-backend", platGRPC)
			}
		}
		// (A dependency on an unknown service fails the loader's consistency check.)
		for dep, d := range s.DependsOn {
			ds, known := p.Services[dep]
			if d.Condition == types.ServiceConditionHealthy {
				rep.check("compose.healthy-has-healthcheck", known && hasHealthcheck(ds), "%s waits for %s healthy and it has a healthcheck", gs.name, dep)
			}
		}
	}

	// The gateway's spool is a volume of each replica's own: anonymous (a
	// spool belongs to one process; a named volume would be every
	// replica's).
	gw, _ := svc("gateway")
	spool := envOf(gw)["GATEWAY_SPOOL_DIR"]
	own := false
	for _, v := range gw.Volumes {
		if v.Type == types.VolumeTypeVolume && v.Source == "" && v.Target == spool && !v.ReadOnly {
			own = true
		}
	}
	rep.check("compose.spool-volume", own, "gateway GATEWAY_SPOOL_DIR=%s is an anonymous volume, one per replica", spool)

	checkEdge(ctx, rep, repo, p, listen)
}

// checkScalable: a service run as several replicas publishes no fixed host
// port (the second replica could not bind it), has no container name (it
// must be unique) and shares no writable volume between its replicas.
func checkScalable(rep *Report, s types.ServiceConfig, gs goService) {
	for _, pc := range s.Ports {
		rep.check("compose.scalable", pc.Published == "", "%s (scaled) publishes no fixed host port (got %s:%d)", gs.name, pc.Published, pc.Target)
	}
	rep.check("compose.scalable", s.ContainerName == "", "%s (scaled) has no container_name (%q)", gs.name, s.ContainerName)
	for _, v := range s.Volumes {
		shared := !v.ReadOnly && (v.Type == types.VolumeTypeBind || (v.Type == types.VolumeTypeVolume && v.Source != ""))
		rep.check("compose.scalable", !shared, "%s (scaled) shares no writable volume between replicas (%s -> %s)", gs.name, v.Source, v.Target)
	}
}

// checkStopGrace: docker waits stop_grace_period (10 s by default) after
// SIGTERM before it kills: at least the process's shutdown budget (from
// SHUTDOWN_GRACE, as for Kubernetes) and a margin.
func checkStopGrace(ctx context.Context, rep *Report, repo Repo, s types.ServiceConfig, gs goService, env map[string]string) {
	i := slices.IndexFunc(k8sBinaries, func(b k8sBinary) bool { return b.target == gs.target })
	if i < 0 || k8sBinaries[i].shutdown == nil {
		return
	}
	b := k8sBinaries[i]
	role := env["GATEWAY_ROLE"]
	graceText, set := env["SHUTDOWN_GRACE"]
	if !set {
		reads, err := binaryEnv(ctx, repo.Root, b.target)
		if !rep.check("compose.stop-grace", err == nil, "%s: the variables %s reads are known (%v)", gs.name, b.target, err) {
			return
		}
		graceText = reads["SHUTDOWN_GRACE"].def
	}
	grace, err := time.ParseDuration(graceText)
	stop := 10 * time.Second
	if s.StopGracePeriod != nil {
		stop = time.Duration(*s.StopGracePeriod)
	}
	need := b.shutdown(role, grace) + drainMargin
	rep.check("compose.stop-grace", err == nil && stop >= need, "%s stop_grace_period %s >= shutdown %s (SHUTDOWN_GRACE %s) + margin %s",
		gs.name, stop, b.shutdown(role, grace), graceText, drainMargin)
}
