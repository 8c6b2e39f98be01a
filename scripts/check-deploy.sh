#!/usr/bin/env bash
# scripts/check-deploy.sh — validate the container deployment files without a
# Docker engine: docker-compose.yml, deploy/docker/*.Dockerfile, .dockerignore.
#
#  1. compose file: `docker compose config -q` when the compose CLI plugin is
#     installed (it parses without an engine), else a python3 YAML parse;
#  2. cross-checks of the compose model against the run contract and the
#     code: env var names (fixed list, and read by the Go sources), listen
#     addresses on 0.0.0.0 and EXPOSEd, dial addresses/URLs pointing at
#     compose services and their ports, depends_on / healthchecks, published
#     ports, the spool volume, build contexts and Dockerfile paths;
#  3. each Dockerfile: base images, nonroot, ENTRYPOINT, the go build target
#     exists (test -d), every go.work module's go.mod/go.sum is copied before
#     `go mod download`;
#  4. each builder stage is replayed locally: its COPY lines against the
#     build context (honouring .dockerignore) into a scratch directory, its
#     RUN lines (go mod download, CGO_ENABLED=0 go build ...) run there, the
#     files the final stage copies exist, and the binary is static.
#
# Prints every check; exits non-zero if any fails.
set -uo pipefail
cd "$(dirname "$0")/.."

command -v python3 >/dev/null || { echo "FAIL python3 is required" >&2; exit 1; }
command -v go >/dev/null || { echo "FAIL go is required" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/check-deploy.XXXXXX")
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
fail=0

echo "== compose file"
if [ ! -f docker-compose.yml ]; then
	echo "FAIL docker-compose.yml is missing"
	exit 1
fi
if docker compose version >/dev/null 2>&1; then
	if docker compose -f docker-compose.yml config -q; then
		echo "ok   docker compose -f docker-compose.yml config -q"
	else
		echo "FAIL docker compose -f docker-compose.yml config -q"
		fail=1
	fi
	if ! docker compose -f docker-compose.yml config --format json >"$tmp/compose.json"; then
		echo "FAIL docker compose config --format json"
		exit 1
	fi
	echo "ok   model from docker compose config --format json"
elif python3 -c 'import yaml' 2>/dev/null; then
	echo "note docker compose plugin not installed; parsing the YAML with python3 (no compose schema validation)"
	if python3 -c 'import json, sys, yaml; json.dump(yaml.safe_load(open("docker-compose.yml")), open(sys.argv[1], "w"))' "$tmp/compose.json"; then
		echo "ok   docker-compose.yml is valid YAML"
	else
		echo "FAIL docker-compose.yml is not valid YAML"
		exit 1
	fi
else
	echo "FAIL neither the docker compose plugin nor python3-yaml is available to parse docker-compose.yml"
	exit 1
fi

python3 - "$tmp" <<'PY' || fail=1
import glob, json, os, re, shutil, subprocess, sys
from urllib.parse import urlsplit

tmp = sys.argv[1]
root = os.getcwd()
failed = False

def ok(msg):
    print("ok   " + msg)

def bad(msg):
    global failed
    failed = True
    print("FAIL " + msg)

def check(cond, msg):
    (ok if cond else bad)(msg)
    return cond

# The run contract: the only variables compose may set on the Go services.
CONTRACT = {
    "APP_ENV", "PLATFORM_HTTP_ADDR", "PLATFORM_GRPC_ADDR", "GATEWAY_HTTP_ADDR",
    "GATEWAY_GRPC_ADDR", "PLATFORM_DATABASE_URL", "GATEWAY_DATABASE_URL",
    "NATS_URL", "GATEWAY_SPOOL_DIR", "UPSTREAM_OPENAI_URL",
    "UPSTREAM_ANTHROPIC_URL", "UPSTREAM_GOOGLE_URL",
    "UPSTREAM_AZURE_URL_TEMPLATE", "FAKE_PROVIDER_ADDR",
    # Beyond PRODUCT §10 ("more are fine"), documented in the README's table.
    "GATEWAY_ROLE",
}
# Per Go service: Dockerfile, Go module dirs whose sources read its env,
# variables it must get, which of them are listen addresses.
GO_SERVICES = {
    "platform-backend": dict(
        dockerfile="deploy/docker/platform-backend.Dockerfile",
        target="./services/platform-backend/cmd/platform-backend",
        srcdirs=["services/platform-backend", "services/internal"],
        required=["APP_ENV", "PLATFORM_HTTP_ADDR", "PLATFORM_GRPC_ADDR", "PLATFORM_DATABASE_URL", "NATS_URL"],
        listen=["PLATFORM_HTTP_ADDR", "PLATFORM_GRPC_ADDR"],
        publish=["PLATFORM_HTTP_ADDR"]),
    "gateway": dict(
        dockerfile="deploy/docker/gateway.Dockerfile",
        target="./services/gateway/cmd/gateway",
        srcdirs=["services/gateway", "services/internal"],
        required=["APP_ENV", "GATEWAY_HTTP_ADDR", "GATEWAY_GRPC_ADDR", "PLATFORM_GRPC_ADDR",
                  "GATEWAY_DATABASE_URL", "NATS_URL", "GATEWAY_SPOOL_DIR",
                  "UPSTREAM_OPENAI_URL", "UPSTREAM_ANTHROPIC_URL", "UPSTREAM_GOOGLE_URL",
                  "UPSTREAM_AZURE_URL_TEMPLATE"],
        listen=["GATEWAY_HTTP_ADDR", "GATEWAY_GRPC_ADDR"],
        publish=["GATEWAY_HTTP_ADDR"]),
    "fake-provider": dict(
        dockerfile="deploy/docker/fake-provider.Dockerfile",
        target="./services/gateway/cmd/fake-provider",
        srcdirs=["services/gateway/cmd/fake-provider", "services/gateway/internal/fakeprovider"],
        required=["FAKE_PROVIDER_ADDR"],
        listen=["FAKE_PROVIDER_ADDR"],
        publish=[]),
}

# Compose services running another service's image in another role:
# checked like that service (env, dials, dependencies), with their own
# required variables; the image itself is checked once, above.
ROLE_SERVICES = {
    "gateway-ingester": dict(GO_SERVICES["gateway"], base="gateway",
        required=["APP_ENV", "GATEWAY_ROLE", "GATEWAY_HTTP_ADDR", "PLATFORM_GRPC_ADDR", "GATEWAY_DATABASE_URL", "NATS_URL"],
        listen=["GATEWAY_HTTP_ADDR"], publish=[]),
}

def go_sources_mention(dirs, name):
    lit = '"%s"' % name
    for d in dirs:
        for dp, _, files in os.walk(d):
            for f in files:
                if f.endswith(".go") and not f.endswith("_test.go"):
                    with open(os.path.join(dp, f), encoding="utf-8", errors="replace") as fh:
                        if lit in fh.read():
                            return True
    return False

def hostport(addr):
    m = re.fullmatch(r"\[?([^\]]*)\]?:(\d+)", addr or "")
    return (m.group(1), int(m.group(2))) if m else (None, None)

# ---------------------------------------------------------------- Dockerfiles
def parse_dockerfile(path):
    text = open(path).read()
    lines, cur = [], ""
    for raw in text.splitlines():
        s = raw.strip()
        if not cur and (not s or s.startswith("#")):
            continue
        if s.endswith("\\"):
            cur += s[:-1] + " "
            continue
        cur += s
        lines.append(cur.strip())
        cur = ""
    stages, st = [], None
    for ln in lines:
        kw, _, rest = ln.partition(" ")
        kw = kw.upper()
        if kw == "FROM":
            m = re.match(r"(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", rest, re.I)
            st = dict(image=m.group(1), name=m.group(2), instrs=[])
            stages.append(st)
        elif st is not None:
            st["instrs"].append((kw, rest.strip()))
    return stages

def dockerignore_patterns():
    pats = []
    if os.path.exists(".dockerignore"):
        for ln in open(".dockerignore"):
            ln = ln.strip()
            if not ln or ln.startswith("#"):
                continue
            neg = ln.startswith("!")
            p = ln[1:] if neg else ln
            p = os.path.normpath(p.strip("/"))
            rx = ""
            i = 0
            while i < len(p):
                if p.startswith("**/", i):
                    rx += "(?:.*/)?"; i += 3
                elif p.startswith("**", i):
                    rx += ".*"; i += 2
                elif p[i] == "*":
                    rx += "[^/]*"; i += 1
                elif p[i] == "?":
                    rx += "[^/]"; i += 1
                else:
                    rx += re.escape(p[i]); i += 1
            pats.append((re.compile(rx + r"\Z"), neg))
    return pats

IGNORE = dockerignore_patterns()

def ignored(rel):
    parts = rel.split("/")
    res = False
    for rx, neg in IGNORE:
        for k in range(1, len(parts) + 1):
            if rx.match("/".join(parts[:k])):
                res = not neg
                break
    return res

def copy_into(src_rel, dst):
    """Copy one context path (file or dir) the way COPY does, skipping ignored files."""
    src = os.path.join(root, src_rel)
    if os.path.isdir(src):
        for dp, dns, fns in os.walk(src):
            reld = os.path.relpath(dp, root)
            dns[:] = [d for d in dns if not ignored(os.path.normpath(os.path.join(reld, d)))]
            for f in fns:
                r = os.path.normpath(os.path.join(reld, f))
                if ignored(r):
                    continue
                out = os.path.join(dst, os.path.relpath(os.path.join(dp, f), src))
                os.makedirs(os.path.dirname(out), exist_ok=True)
                shutil.copy2(os.path.join(dp, f), out)
    else:
        os.makedirs(dst if dst.endswith("/") else os.path.dirname(dst), exist_ok=True)
        shutil.copy2(src, os.path.join(dst, os.path.basename(src)) if dst.endswith("/") else dst)

go_work_uses = []
in_use = False
for ln in open("go.work"):
    s = ln.split("//")[0].strip()
    if s.startswith("use ("):
        in_use = True
    elif in_use and s == ")":
        in_use = False
    elif in_use and s:
        go_work_uses.append(os.path.normpath(s))
    elif s.startswith("use ") and "(" not in s:
        go_work_uses.append(os.path.normpath(s[4:].strip()))
go_version = re.search(r"^go (\d+\.\d+)", open("go.work").read(), re.M).group(1)

print("== .dockerignore")
check(os.path.exists(".dockerignore"), ".dockerignore exists at the repo root (build context)")
for p in [".git", ".tools", "bin", "data"]:
    check(ignored(p), ".dockerignore excludes %s" % p)
for p in ["go.work", "go.mod", "proto/go.mod", "services"]:
    check(not ignored(p), ".dockerignore keeps %s" % p)

exposed = {}
for svc, spec in GO_SERVICES.items():
    df = spec["dockerfile"]
    print("== %s" % df)
    if not check(os.path.isfile(df), "%s exists" % df):
        continue
    stages = parse_dockerfile(df)
    if not check(len(stages) >= 2, "multi-stage (%d stages)" % len(stages)):
        continue
    build, final = stages[0], stages[-1]
    check(build["image"] == "golang:%s-bookworm" % go_version,
          "builder image %s matches go.work (go %s)" % (build["image"], go_version))
    check(final["image"].startswith("gcr.io/distroless/static") or final["image"].startswith("debian:"),
          "final image %s" % final["image"])
    users = [a for k, a in final["instrs"] if k == "USER"]
    nonroot = (users and users[-1].split(":")[0] not in ("root", "0")) or \
        (final["image"].endswith(":nonroot") and not users)
    check(nonroot, "final stage runs as a non-root user (%s)" % (users[-1] if users else final["image"]))
    ents = [a for k, a in final["instrs"] if k == "ENTRYPOINT"]
    check(ents and json.loads(ents[-1]) == ["/app"], 'ENTRYPOINT ["/app"]')
    ports = set()
    for k, a in final["instrs"]:
        if k == "EXPOSE":
            ports |= {int(p.split("/")[0]) for p in a.split()}
    exposed[svc] = ports
    check(ports, "EXPOSE %s" % " ".join(str(p) for p in sorted(ports)))
    for k, a in final["instrs"]:
        if k == "ENV":
            for name in re.findall(r"(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)=", a):
                check(name in CONTRACT and go_sources_mention(spec["srcdirs"], name),
                      "image ENV %s is in the run contract and read by the code" % name)

    runs = [a for k, a in build["instrs"] if k == "RUN"]
    gb = [r for r in runs if "go build" in r]
    if not check(len(gb) == 1, "builder has one go build"):
        continue
    m = re.search(r"\s(\./\S+)\s*$", gb[0])
    target = m.group(1) if m else None
    check(target == spec["target"], "go build target %s (want %s)" % (target, spec["target"]))
    check(target and os.path.isdir(target), "test -d %s" % target)
    for flag in ["CGO_ENABLED=0", "-trimpath", "-ldflags='-s -w'", "-o /out/app"]:
        check(flag in gb[0], "go build uses %s" % flag)

    # COPY order: all go.mod/go.sum of the workspace before go mod download.
    copied_before_download, seen_download = set(), False
    for k, a in build["instrs"]:
        if k == "RUN" and "go mod download" in a:
            seen_download = True
        if k == "COPY" and not seen_download and "--from" not in a:
            for s in a.split()[:-1]:
                for g in glob.glob(s) or [s]:
                    copied_before_download.add(os.path.normpath(g))
    check(seen_download, "builder runs go mod download")
    check("go.work" in copied_before_download, "go.work copied before go mod download")
    if os.path.exists("go.work.sum"):
        check("go.work.sum" in copied_before_download, "go.work.sum copied before go mod download")
    for u in go_work_uses:
        for f in ["go.mod", "go.sum"]:
            p = os.path.normpath(os.path.join(u, f))
            if os.path.exists(p):
                check(p in copied_before_download, "%s copied before go mod download" % p)

    # Replay the builder stage: COPY from the context, RUN in a scratch dir.
    stage = os.path.join(tmp, svc)
    out = os.path.join(stage, "out")
    workdir = "/"
    env = {k: v for k, v in os.environ.items() if k not in ("GOFLAGS", "GOWORK", "CGO_ENABLED")}
    env["GOFLAGS"] = "-modcacherw"  # lets the EXIT trap delete a fresh module cache
    replay_ok = True
    for k, a in build["instrs"]:
        if k == "WORKDIR":
            workdir = a
        elif k in ("ENV", "ARG"):
            for name, val in re.findall(r'([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\S+)', a):
                env[name] = val.strip('"')
        elif k == "COPY":
            args = a.split()
            if any(x.startswith("--") for x in args):
                bad("builder COPY with flags not replayed: %s" % a)
                replay_ok = False
                break
            *srcs, dst = args
            dst_abs = os.path.join(stage, "ctx", (workdir.lstrip("/")), dst)
            if dst.endswith("/"):
                dst_abs += "/"
            matched = []
            for s in srcs:
                g = [os.path.relpath(x, root) for x in glob.glob(os.path.join(root, s))]
                matched += [x for x in g if not ignored(os.path.normpath(x))]
            if not matched:
                bad("COPY %s: no source in the build context" % a)
                replay_ok = False
                break
            for s in matched:
                copy_into(s, dst_abs)
        elif k == "RUN":
            cmd = re.sub(r"--mount=\S+\s*", "", a).replace("/out/", out + "/")
            os.makedirs(out, exist_ok=True)
            cwd = os.path.join(stage, "ctx", workdir.lstrip("/"))
            os.makedirs(cwd, exist_ok=True)
            r = subprocess.run(["bash", "-c", cmd], cwd=cwd, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            shown = " ".join(cmd.replace(out + "/", "/out/").split())
            if r.returncode != 0:
                bad("RUN %s\n%s" % (shown, r.stdout.rstrip()))
                replay_ok = False
                break
            ok("RUN %s" % shown)
    if not replay_ok:
        continue
    binp = os.path.join(out, "app")
    if check(os.path.isfile(binp), "builder produced /out/app"):
        r = subprocess.run(["readelf", "-lW", binp], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) \
            if shutil.which("readelf") else None
        if r is not None:
            check(r.returncode == 0 and "INTERP" not in r.stdout and "DYNAMIC" not in r.stdout,
                  "/out/app is a static binary (runs on distroless/static)")
    for k, a in final["instrs"]:
        if k == "COPY" and "--from=" + (build["name"] or "0") in a:
            src = [x for x in a.split() if not x.startswith("--")][0]
            check(os.path.exists(os.path.join(out, os.path.relpath(src, "/out"))),
                  "final stage COPY source %s exists in the builder" % src)

# -------------------------------------------------------------------- compose
print("== docker-compose.yml model")
model = json.load(open(os.path.join(tmp, "compose.json")))
services = model.get("services") or {}
check(set(services) == {"postgres", "nats", *GO_SERVICES, *ROLE_SERVICES},
      "services: %s" % ", ".join(sorted(services)))

def env_of(s):
    e = services.get(s, {}).get("environment") or {}
    if isinstance(e, list):
        e = dict(x.split("=", 1) if "=" in x else (x, None) for x in e)
    return {k: ("" if v is None else str(v)) for k, v in e.items()}

def deps_of(s):
    d = services.get(s, {}).get("depends_on") or {}
    if isinstance(d, list):
        d = {x: {"condition": "service_started"} for x in d}
    return d

def ports_of(s):
    res = []
    for p in services.get(s, {}).get("ports") or []:
        if isinstance(p, dict):
            res.append((int(p["published"]) if p.get("published") else None, int(p["target"])))
        else:
            parts = str(p).split("/")[0].split(":")
            res.append((int(parts[-2]) if len(parts) > 1 else None, int(parts[-1])))
    return res

def has_healthcheck(s):
    hc = services.get(s, {}).get("healthcheck")
    return bool(hc) and not hc.get("disable")

postgres_env = env_of("postgres")
pg_user = postgres_env.get("POSTGRES_USER", "postgres")
pg_pass = postgres_env.get("POSTGRES_PASSWORD", "")
check(services.get("postgres", {}).get("image", "").startswith("postgres:15"), "postgres image postgres:15")
check(pg_pass or postgres_env.get("POSTGRES_HOST_AUTH_METHOD") == "trust", "postgres has a password or trust auth")
check(has_healthcheck("postgres") and "pg_isready" in json.dumps(services["postgres"]["healthcheck"]),
      "postgres healthcheck uses pg_isready")
for k in postgres_env:
    check(k.startswith("POSTGRES_"), "postgres env %s" % k)
nats = services.get("nats", {})
cmd = nats.get("command") or []
cmd = cmd.split() if isinstance(cmd, str) else cmd
check(nats.get("image", "").startswith("nats:2.10"), "nats image %s" % nats.get("image"))
check("-js" in cmd and "-sd" in cmd, "nats runs with JetStream and a store dir (%s)" % " ".join(cmd))
hc = json.dumps(nats.get("healthcheck") or {})
if has_healthcheck("nats"):
    check("-m" in cmd or "--http_port" in cmd, "nats monitoring port enabled for its healthcheck")
    check("alpine" in nats.get("image", "") or "CMD-SHELL" not in hc,
          "nats healthcheck runs in an image that has the tool (%s)" % nats.get("image"))

compose_listen = {}
for svc, spec in {**GO_SERVICES, **ROLE_SERVICES}.items():
    s = services.get(svc)
    if s is None:
        continue
    env = env_of(svc)
    b = s.get("build") or {}
    ctx = b.get("context", ".") if isinstance(b, dict) else b
    check(os.path.realpath(os.path.join(root, ctx)) == root, "%s build context is the repo root" % svc)
    dfile = b.get("dockerfile") if isinstance(b, dict) else None
    check(dfile == spec["dockerfile"] and os.path.isfile(dfile or ""), "%s dockerfile %s exists" % (svc, dfile))
    check(not has_healthcheck(svc), "%s has no container healthcheck (distroless: no shell/curl)" % svc)
    for name in sorted(env):
        check(name in CONTRACT, "%s env %s is in the run contract" % (svc, name))
        check(go_sources_mention(spec["srcdirs"], name), "%s env %s is read by %s" % (svc, name, ",".join(spec["srcdirs"])))
    for name in spec["required"]:
        check(name in env, "%s sets %s" % (svc, name))
    if "APP_ENV" in env:
        check(env["APP_ENV"] == "dev", "%s APP_ENV=dev (keys generated; no key files in compose)" % svc)
    compose_listen[svc] = {}
    for name in spec["listen"]:
        h, p = hostport(env.get(name))
        if check(h in ("0.0.0.0", "") and p, "%s %s=%s listens on all interfaces" % (svc, name, env.get(name))):
            compose_listen[svc][name] = p
            check(p in exposed.get(spec.get("base", svc), set()), "%s port %d is EXPOSEd in its Dockerfile" % (svc, p))
    published = ports_of(svc)
    for name in spec["publish"]:
        p = compose_listen[svc].get(name)
        check(any(t == p and pub for pub, t in published), "%s publishes %s port %s" % (svc, name, p))

def check_dial(svc, name, host, port, want_svc, want_port):
    check(host == want_svc and host in services, "%s %s host %s is the %s service" % (svc, name, host, want_svc))
    check(port == want_port, "%s %s port %s matches %s's %s" % (svc, name, port, want_svc, want_port))
    if host in services:
        check(host in deps_of(svc), "%s depends_on %s" % (svc, host))

fake_port = compose_listen.get("fake-provider", {}).get("FAKE_PROVIDER_ADDR")
plat_grpc = compose_listen.get("platform-backend", {}).get("PLATFORM_GRPC_ADDR")
for svc in ("platform-backend", "gateway", *ROLE_SERVICES):
    env = env_of(svc)
    for name, val in sorted(env.items()):
        if name.endswith("_DATABASE_URL"):
            u = urlsplit(val)
            check_dial(svc, name, u.hostname, u.port or 5432, "postgres", 5432)
            check(u.username == pg_user and (u.password or "") == pg_pass, "%s %s credentials match postgres" % (svc, name))
            check(u.path.strip("/") != "", "%s %s names a database (%s)" % (svc, name, u.path.strip("/")))
        elif name == "NATS_URL":
            u = urlsplit(val)
            check_dial(svc, name, u.hostname, u.port or 4222, "nats", 4222)
        elif name.startswith("UPSTREAM_"):
            u = urlsplit(val.replace("{resource}", "r").replace("{deployment}", "d"))
            check(u.scheme in ("http", "https") and u.hostname, "%s %s is an http(s) URL" % (svc, name))
            if u.hostname in services:
                check_dial(svc, name, u.hostname, u.port or 80, "fake-provider", fake_port)
        elif name == "PLATFORM_GRPC_ADDR" and svc != "platform-backend":
            h, p = hostport(val)
            check_dial(svc, name, h, p, "platform-backend", plat_grpc)
    for dep, d in deps_of(svc).items():
        cond = (d or {}).get("condition", "service_started")
        check(dep in services, "%s depends_on %s exists" % (svc, dep))
        if cond == "service_healthy":
            check(has_healthcheck(dep), "%s waits for %s healthy and it has a healthcheck" % (svc, dep))

spool = env_of("gateway").get("GATEWAY_SPOOL_DIR")
vols = services.get("gateway", {}).get("volumes") or []
named = set(model.get("volumes") or {})
def vol_target(v):
    if isinstance(v, dict):
        return v.get("type", "volume"), v.get("source"), v.get("target")
    parts = v.split(":")
    return ("volume" if not parts[0].startswith((".", "/")) else "bind"), parts[0], parts[1]
check(any(t == "volume" and src in named and tgt == spool for t, src, tgt in map(vol_target, vols)),
      "gateway GATEWAY_SPOOL_DIR=%s is a named volume" % spool)

sys.exit(1 if failed else 0)
PY
[ "$fail" = 0 ] || fail=1

echo
if [ "$fail" = 0 ]; then
	echo "check-deploy: all checks passed"
else
	echo "check-deploy: FAILED (see FAIL lines above)"
fi
exit "$fail"
