// Package proxy is the gateway's data plane: it authenticates the caller's
// API key from the in-memory cache, applies rate limits, injects the tenant's
// provider credential, relays the upstream answer (SSE event by event) and
// publishes a metered usage event. It does no synchronous I/O besides the
// upstream call.
package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/trace"

	"trueportai/services/gateway/internal/keys"
	"trueportai/services/gateway/internal/metering"
	"trueportai/services/gateway/internal/platform"
	"trueportai/services/gateway/internal/policy"
	"trueportai/services/gateway/internal/provider"
	"trueportai/services/gateway/internal/usage"
	"trueportai/services/internal/egress"
	"trueportai/services/internal/httpserver"
	"trueportai/services/internal/money"
	"trueportai/services/internal/ratelimit"
	"trueportai/services/internal/telemetry"
)

// KeyLookup finds keys by hash (the keys cache).
type KeyLookup interface {
	Lookup(h [32]byte) (*keys.Key, bool)
}

// TenantLookup finds cached tenant contexts; Prefetch loads one in the background.
type TenantLookup interface {
	Get(id string) (*platform.Tenant, bool)
	Prefetch(id string)
}

// Publisher takes usage events.
type Publisher interface {
	Publish(ev *usage.Event)
}

// PolicySource returns the compiled policy rules of a tenant's env (nil: none).
type PolicySource interface {
	Get(tenant, env string) *policy.Set
}

// Pricer prices metered tokens (ok=false for an unknown model).
type Pricer interface {
	Cost(model string, prompt, cached, completion int64) (usd money.USD, ok bool)
}

// RateLimiter admits one request of a key under its requests per minute,
// without I/O and without allocating (ratelimit.Limiter in memory,
// ratelimit.Shared across replicas).
type RateLimiter interface {
	Allow(key string, rpm int, now time.Time) ratelimit.Result
}

// Quota counts a tenant's monthly requests.
type Quota interface {
	Allow(tenant string, limit int64, now time.Time) (ok bool, used int64)
}

// Options configure a Proxy.
type Options struct {
	// Prices gives cost_usd; nil leaves cost unknown.
	Prices Pricer
	// Quota enforces plan request caps; nil disables them.
	Quota Quota
	// Policies are evaluated on requests and responses; nil disables them.
	Policies PolicySource
	// Metrics records Prometheus series; nil disables them.
	Metrics *Metrics
	// RedactBody masks PII and secrets in logged bodies when the tenant's
	// storage settings ask for it; nil logs bodies as they are.
	RedactBody func(p provider.Provider, direction string, body []byte) []byte
	// Providers are the upstream APIs served (required).
	Providers     *provider.Registry
	BodyLimit     int64
	HeaderTimeout time.Duration
	IdleTimeout   time.Duration
	// KeepAliveInterval is how long a stream may stay silent toward its
	// client before it gets a keep-alive (provider.StreamKeepAlive), sent
	// by Run; 0: none.
	KeepAliveInterval time.Duration
	// Transport overrides the upstream transport (tests, benchmarks).
	Transport http.RoundTripper
	// Egress is the policy for destinations tenants chose (their base
	// URLs); nil refuses every internal address.
	Egress *egress.Policy
	// TenantTransport overrides the transport to those destinations
	// (tests); by default it dials under Egress.
	TenantTransport http.RoundTripper
	// MaxConcurrent bounds the proxied requests in flight and
	// MaxBufferedBytes the request bytes held in memory; above either a
	// request gets a fast 503 with Retry-After (0: no bound).
	MaxConcurrent    int
	MaxBufferedBytes int64
	// Telemetry traces proxied requests (trace.go); nil or off: no tracing
	// and no cost.
	Telemetry *telemetry.Telemetry
}

// Proxy is the http.Handler of the proxy routes.
type Proxy struct {
	log     *slog.Logger
	keys    KeyLookup
	tenants TenantLookup
	limiter RateLimiter
	pub     Publisher
	opts    Options
	// rt sends upstream requests directly (no http.Client: redirects are
	// returned to the caller, never followed, and the client's per-request
	// header copying and URL cloning are avoided).
	rt http.RoundTripper
	// tenantRT sends requests to tenant-chosen destinations: its dialer
	// refuses what the egress policy refuses.
	tenantRT http.RoundTripper
	now      func() time.Time
	// tracer is set when tracing is on (trace.go).
	tracer trace.Tracer
	// inflight and buffered count what MaxConcurrent and MaxBufferedBytes
	// bound.
	inflight atomic.Int64
	buffered atomic.Int64
	// open lists the calls with an upstream request in flight (open.go).
	open openCalls

	// Pools keep per-request buffers off the garbage collector's back.
	bodies sync.Pool // *bytes.Buffer, request bodies and response captures
	// putBody returns a forwarded body's buffer once the transport has
	// written it (putBuffer; the tests observe when).
	putBody func(*bytes.Buffer)
}

func (p *Proxy) getBuffer() *bytes.Buffer {
	if b, ok := p.bodies.Get().(*bytes.Buffer); ok {
		b.Reset()
		return b
	}
	return new(bytes.Buffer)
}

// putBuffer returns a buffer unless it grew large (those are left to the GC
// so one huge request does not pin memory).
func (p *Proxy) putBuffer(b *bytes.Buffer) {
	if b != nil && b.Cap() <= 1<<20 {
		p.bodies.Put(b)
	}
}

// New builds a proxy.
func New(log *slog.Logger, k KeyLookup, t TenantLookup, l RateLimiter, pub Publisher, opts Options) *Proxy {
	rt := opts.Transport
	if rt == nil {
		rt = NewTransport(opts.HeaderTimeout)
	}
	if opts.Egress == nil {
		opts.Egress = &egress.Policy{}
	}
	trt := opts.TenantTransport
	if trt == nil {
		tr := NewTransport(opts.HeaderTimeout)
		tr.DialContext = opts.Egress.DialContext(10*time.Second, 30*time.Second)
		trt = tr
	}
	p := &Proxy{
		log: log, keys: k, tenants: t, limiter: l, pub: pub, opts: opts, now: time.Now,
		rt: rt, tenantRT: trt,
	}
	p.putBody = p.putBuffer
	if opts.Telemetry.Enabled() {
		p.tracer = opts.Telemetry.Tracer("trueportai/gateway/proxy")
	}
	return p
}

// NewTransport is the tuned upstream transport: keep-alive pools sized for a
// proxy, a header timeout, no overall timeout (long streams are healthy).
func NewTransport(headerTimeout time.Duration) *http.Transport {
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   512,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: headerTimeout,
		ExpectContinueTimeout: time.Second,
	}
}

// call is the state of one proxied request.
// headerVals hands out the one-element value slices of the gateway's own
// response headers from the call's allocation instead of one each.
type headerVals struct {
	buf [5]string
	n   int
}

// set sets the canonical header key to val.
func (v *headerVals) set(h http.Header, key, val string) {
	if v.n == len(v.buf) {
		h.Set(key, val)
		return
	}
	v.buf[v.n] = val
	h[key] = v.buf[v.n : v.n+1 : v.n+1]
	v.n++
}

type call struct {
	hdr        headerVals
	start      time.Time
	requestID  string
	prov       provider.Provider // nil until the route names one
	target     provider.Target
	key        *keys.Key
	tenant     *platform.Tenant
	model      string
	stream     bool
	hideUsage  bool
	sentAt     time.Time // upstream request sent
	headersAt  time.Time // upstream headers received
	firstByte  time.Time
	status     int
	outcome    string
	errText    string
	usage      metering.Usage
	violations []usage.Violation
	rules      *policy.Set
	bodyBuf    *bytes.Buffer // pooled storage of the request body
	reqBody    []byte        // as forwarded, kept only when the tenant logs bodies
	respBody   bytes.Buffer  // bounded copy, kept only when the tenant logs bodies
	overheadMS float64
	idleBody   idleReader       // a stream's upstream body (part of the call's allocation)
	gate       bodyGate         // the request body, counted against MaxBufferedBytes
	limited    io.LimitedReader // the request body, read up to BodyLimit+1
	upBody     pooledBody       // the forwarded body, handed to the transport
	open       openCall         // on the proxy's list while the upstream request is in flight
	tr         *callTrace       // tracing on: the request's spans (trace.go)
}

// errOverloaded: the replica holds as many request bytes as it may.
var errOverloaded = errors.New("request bytes bound reached")

// bodyGate counts the request bytes read against the proxy's bound.
type bodyGate struct {
	io.ReadCloser
	p        *Proxy
	max      int64
	reserved int64
}

func (g *bodyGate) Read(b []byte) (int, error) {
	n, err := g.ReadCloser.Read(b)
	if n > 0 {
		if g.p.buffered.Add(int64(n)) > g.max {
			g.p.buffered.Add(-int64(n))
			return 0, errOverloaded
		}
		g.reserved += int64(n)
	}
	return n, err
}

// overloaded answers a request above the replica's bounds: a fast 503 in
// the provider's shape, with Retry-After.
func (p *Proxy) overloaded(w http.ResponseWriter, c *call) {
	w.Header().Set("Retry-After", "1")
	p.refuse(w, c, refusal{http.StatusServiceUnavailable, "overloaded", "the gateway is at capacity; retry shortly"})
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := &call{start: p.now(), requestID: httpserver.NewRequestID(), outcome: usage.OutcomeOK}
	defer func() {
		if c.bodyBuf != nil { // not handed to the transport
			p.putBuffer(c.bodyBuf)
		}
	}()
	c.hdr.set(w.Header(), "X-Request-Id", c.requestID)
	if p.tracer != nil {
		r = p.startTrace(w, r, c)
		defer p.endTrace(c)
	}
	var err error
	prov, rest, ok := p.opts.Providers.Match(r.URL.EscapedPath())
	if ok {
		c.prov = prov
		c.target, err = prov.Route(rest)
	}
	if !ok || err != nil {
		c.status = http.StatusBadRequest
		refusal{http.StatusBadRequest, "invalid_path", "the request path is not allowed"}.write(w, c.prov)
		return
	}
	if max := p.opts.MaxConcurrent; max > 0 {
		if p.inflight.Add(1) > int64(max) {
			p.inflight.Add(-1)
			p.overloaded(w, c)
			return
		}
		defer p.inflight.Add(-1)
	}
	if ref, ok := p.admit(w, r, c); !ok {
		ref.write(w, c.prov)
		p.record(r, c, ref.status)
		return
	}
	p.forward(w, r, c)
	p.record(r, c, c.status)
}

// providerName labels metrics; unrouted requests count as "unknown".
func (c *call) providerName() string {
	if c.prov == nil {
		return "unknown"
	}
	return c.prov.Name()
}

// callerKey reads the TruePortAI key from every header style SDKs use.
func callerKey(r *http.Request) string {
	h := r.Header
	if v := h.Get("X-Api-Key"); v != "" {
		return v
	}
	if v, ok := strings.CutPrefix(h.Get("Authorization"), "Bearer "); ok && v != "" {
		return strings.TrimSpace(v)
	}
	if v := h.Get("X-Goog-Api-Key"); v != "" {
		return v
	}
	if v := h.Get("Api-Key"); v != "" {
		return v
	}
	if r.URL.RawQuery == "" {
		return ""
	}
	// The key parameter counts only when it is there once, by its decoded
	// name (the same decoding stripKeyParam applies before forwarding).
	if vals := r.URL.Query()["key"]; len(vals) == 1 {
		return vals[0]
	}
	return ""
}

// admit runs the gateway's own checks. It returns ok=false with the refusal
// to send; no upstream request is made then.
func (p *Proxy) admit(w http.ResponseWriter, r *http.Request, c *call) (refusal, bool) {
	secret := callerKey(r)
	if secret == "" {
		return refusal{http.StatusUnauthorized, "missing_api_key", "missing API key: send your TruePortAI key (sk-...) in x-api-key or Authorization: Bearer"}, false
	}
	k, ok := p.keys.Lookup(keys.Hash(secret))
	if !ok {
		return refusal{http.StatusUnauthorized, "invalid_api_key", "invalid API key"}, false
	}
	c.key = k
	if !k.Enabled {
		return refusal{http.StatusUnauthorized, "api_key_disabled", "this API key is disabled"}, false
	}
	if !k.Usable(c.start) {
		return refusal{http.StatusUnauthorized, "api_key_expired", "this API key has expired"}, false
	}
	tn, ok := p.tenants.Get(k.TenantID)
	if !ok {
		p.tenants.Prefetch(k.TenantID)
		return refusal{http.StatusServiceUnavailable, "tenant_context_unavailable", "the gateway is loading this organisation's settings; retry shortly"}, false
	}
	c.tenant = tn
	if !tn.Active() {
		return refusal{http.StatusForbidden, "tenant_suspended", "this organisation is suspended"}, false
	}
	// A key's RPM is its own, at most the plan's maximum (which overrides
	// may lift or remove); 0 follows the plan's maximum, none if it has none.
	rpm := k.RPMLimit
	if maxRPM := int(tn.MaxRPMPerKey); maxRPM > 0 && (rpm <= 0 || rpm > maxRPM) {
		rpm = maxRPM
	}
	rl := p.limiter.Allow(k.ID, rpm, c.start)
	if rl.Limit > 0 {
		// The three values share one string (one allocation).
		var nb [3 * 20]byte
		b := strconv.AppendInt(nb[:0], int64(rl.Limit), 10)
		i := len(b)
		b = strconv.AppendInt(b, int64(rl.Remaining), 10)
		j := len(b)
		b = strconv.AppendInt(b, int64((rl.Reset+time.Second-1)/time.Second), 10)
		vals := string(b)
		h := w.Header()
		c.hdr.set(h, "X-Ratelimit-Limit", vals[:i])
		c.hdr.set(h, "X-Ratelimit-Remaining", vals[i:j])
		c.hdr.set(h, "X-Ratelimit-Reset", vals[j:])
	}
	if !rl.Allowed {
		w.Header().Set("Retry-After", strconv.Itoa(int((rl.RetryAfter+time.Second-1)/time.Second)))
		return refusal{http.StatusTooManyRequests, "rate_limit_exceeded", "rate limit exceeded: this key allows " + strconv.Itoa(rl.Limit) + " requests per minute (key rpm_limit)"}, false
	}
	if p.opts.Quota != nil {
		if ok, used := p.opts.Quota.Allow(tn.ID, tn.MonthlyRequests, c.start); !ok {
			next := time.Date(c.start.UTC().Year(), c.start.UTC().Month()+1, 1, 0, 0, 0, 0, time.UTC)
			w.Header().Set("Retry-After", strconv.Itoa(int(next.Sub(c.start).Seconds())+1))
			return refusal{http.StatusTooManyRequests, "quota_exceeded", "monthly request quota exceeded: the " + tn.PlanID + " plan allows " +
				strconv.FormatInt(tn.MonthlyRequests, 10) + " requests per month (" + strconv.FormatInt(used, 10) + " used); upgrade the plan or wait for the next month (UTC)"}, false
		}
	}
	return refusal{}, true
}

// hop-by-hop and credential headers never cross the gateway.
var dropRequestHeaders = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true, "Proxy-Authorization": true, "Te": true,
	"Trailer": true, "Transfer-Encoding": true, "Upgrade": true, "Authorization": true, "X-Api-Key": true,
	"X-Goog-Api-Key": true, "Api-Key": true, "Cookie": true, "Host": true, "Content-Length": true,
	"Accept-Encoding": true, "Forwarded": true, "X-Forwarded-For": true, "X-Forwarded-Host": true,
	"X-Forwarded-Proto": true, "X-Real-Ip": true, "X-Tenant-Slug": true, "X-Request-Id": true,
}

var dropResponseHeaders = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true, "Proxy-Authorization": true, "Te": true,
	"Trailer": true, "Transfer-Encoding": true, "Upgrade": true, "Set-Cookie": true, "Set-Cookie2": true,
	"Authorization": true, "X-Api-Key": true, "Api-Key": true, "X-Goog-Api-Key": true, "Www-Authenticate": true,
	"Content-Length": true, "X-Request-Id": true, "Alt-Svc": true,
	// The provider's trace context is not the client's: with tracing on the
	// answer carries the gateway's (trace.go), off none.
	"Traceparent": true, "Tracestate": true,
}

func copyHeaders(dst, src http.Header, drop map[string]bool) {
	conn := src.Get("Connection")
	for name, vals := range src {
		if drop[name] || (conn != "" && connectionListed(conn, name)) {
			continue
		}
		dst[name] = vals
	}
}

// forwardHeaders copies the client headers the provider accepts: never
// credentials, hop-by-hop, forwarding or the gateway's own headers.
func forwardHeaders(dst, src http.Header, prov provider.Provider) {
	conn := src.Get("Connection")
	for name, vals := range src {
		if dropRequestHeaders[name] || !prov.ForwardHeader(name) || (conn != "" && connectionListed(conn, name)) {
			continue
		}
		dst[name] = vals
	}
}

// connectionListed reports whether the Connection header names name.
func connectionListed(conn, name string) bool {
	return strings.Contains(strings.ToLower(conn), strings.ToLower(name))
}

func (p *Proxy) forward(w http.ResponseWriter, r *http.Request, c *call) {
	prov := c.prov
	cred := c.tenant.Providers[c.target.Credential]
	if missing := prov.MissingCredential(&c.target, cred); missing != "" {
		p.refuse(w, c, refusal{http.StatusBadRequest, "provider_credential_missing",
			"no " + prov.Name() + " credential is configured for this organisation: set the config key " + missing})
		return
	}
	c.bodyBuf = p.getBuffer()
	if max := p.opts.MaxBufferedBytes; max > 0 && r.Body != nil && r.Body != http.NoBody {
		c.gate = bodyGate{ReadCloser: r.Body, p: p, max: max}
		r.Body = &c.gate
		// The caller's request keeps its own body (a reused request must not
		// wrap gate in gate: each would count the bytes again).
		defer func() { r.Body = c.gate.ReadCloser; p.buffered.Add(-c.gate.reserved) }()
	}
	body, err := readBody(r, p.opts.BodyLimit, c.bodyBuf, &c.limited)
	if err != nil {
		if errors.Is(err, errOverloaded) {
			c.status = http.StatusServiceUnavailable
			p.overloaded(w, c)
			c.outcome, c.errText = usage.OutcomeError, "overloaded"
			return
		}
		if errors.Is(err, errTooLarge) {
			p.refuse(w, c, refusal{http.StatusRequestEntityTooLarge, "request_too_large", "request body exceeds " + strconv.FormatInt(p.opts.BodyLimit, 10) + " bytes"})
		} else if errors.Is(err, errUnsupportedEncoding) || errors.Is(err, errBadEncoding) {
			p.refuse(w, c, encodingRefusal(err, p.opts.BodyLimit))
		} else {
			p.refuse(w, c, refusal{http.StatusBadRequest, "invalid_body", "could not read the request body"})
		}
		return
	}
	req := prov.Inspect(&c.target, cred, body)
	c.model, c.stream = req.Model, req.Stream
	if c.model != "" && (!c.key.AllowsModel(c.model) || !allowed(c.tenant.AllowedModels, c.model)) {
		p.refuse(w, c, refusal{http.StatusForbidden, "model_not_allowed", "model " + c.model + " is not allowed for this API key"})
		return
	}
	// With a model allowlist, a request whose model cannot be determined
	// (multipart, batches, files, non-JSON bodies) could run any model: it
	// is refused unless it runs none (the model list).
	if c.model == "" && (len(c.key.AllowedModels) > 0 || len(c.tenant.AllowedModels) > 0) && !prov.ModelFree(&c.target, r.Method) {
		p.refuse(w, c, refusal{http.StatusForbidden, "model_undetermined",
			"this API key only allows listed models, and the model of this request cannot be determined"})
		return
	}
	if p.opts.Policies != nil {
		c.rules = p.opts.Policies.Get(c.key.TenantID, c.key.Env)
	}
	if c.rules != nil && len(body) > 0 {
		res := c.rules.Evaluate(policy.Input{Provider: prov, Env: c.key.Env, Model: c.model, KeyID: c.key.ID, Body: body, Direction: policy.DirectionRequest})
		if c.applyPolicy(res) {
			v := c.violations[c.blockingIndex(res)]
			p.refuse(w, c, refusal{http.StatusBadRequest, "policy_violation",
				"request blocked by policy \"" + v.PolicyName + "\" (" + v.Type + "); violation id " + v.ID})
			c.outcome = usage.OutcomeBlocked
			return
		}
		body = res.Body
	}
	body, c.hideUsage = prov.Prepare(&c.target, req, body)
	if c.tenant.LogRequestBodies {
		c.reqBody = bytes.Clone(body) // the pooled buffer is recycled once sent
	}
	dest, tenantDest, err := prov.URL(&c.target, cred, stripKeyParam(r.URL.RawQuery))
	if err != nil {
		if ref := (*provider.Refusal)(nil); errors.As(err, &ref) {
			p.refuse(w, c, refusal{ref.Status, ref.Code, ref.Message})
		} else {
			p.refuse(w, c, refusal{http.StatusBadRequest, "invalid_path", "the request path is not allowed"})
		}
		return
	}
	rt := p.rt
	if tenantDest {
		// The tenant chose this destination: its scheme is checked now, the
		// address it resolves to when dialled (egress.Policy.DialContext).
		if err := p.opts.Egress.CheckScheme(dest); err != nil {
			p.refuse(w, c, egressRefusal(prov, err))
			return
		}
		rt = p.tenantRT
	}

	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	p.open.add(&c.open, cancel)
	defer p.open.remove(&c.open)
	var reqBody io.Reader
	if len(body) > 0 {
		// The transport may still be writing the body after the response
		// arrives, even after ServeHTTP returns; the pooled buffer goes back
		// only when it reports the body written (handOver). (Part of the
		// call's allocation: the transport's hold on it only keeps the call
		// alive until then.)
		c.upBody.Reader.Reset(body)
		c.upBody.put, c.upBody.buf = p.putBody, c.bodyBuf
		c.bodyBuf = nil
		reqBody, ctx = c.upBody.handOver(ctx)
	}
	up, err := http.NewRequestWithContext(ctx, r.Method, dest, reqBody)
	if err != nil {
		p.refuse(w, c, refusal{http.StatusBadRequest, "invalid_request", "the request cannot be forwarded"})
		return
	}
	up.ContentLength = int64(len(body)) // the client does not size a body behind io.NopCloser by itself
	forwardHeaders(up.Header, r.Header, prov)
	if err := prov.Authorize(up, cred, body); err != nil {
		p.log.WarnContext(r.Context(), "upstream request signing failed", "provider", prov.Name(), "request_id", c.requestID, "err", err)
		p.refuse(w, c, refusal{http.StatusBadGateway, "upstream_auth_failed", "the request could not be authorised for the provider"})
		return
	}

	if c.tr != nil {
		p.startUpstream(r.Context(), c, up)
		defer p.endUpstream(c)
	}
	c.sentAt = p.now()
	resp, err := rt.RoundTrip(up)
	if err != nil {
		p.upstreamFailed(w, r, c, err)
		return
	}
	defer resp.Body.Close()
	c.headersAt = p.now()
	c.status = resp.StatusCode
	if resp.StatusCode >= 300 && resp.StatusCode < 400 && resp.StatusCode != http.StatusNotModified {
		// Redirects are neither followed nor passed on: a Location could
		// send the client (with its key) anywhere.
		p.refuse(w, c, refusal{http.StatusBadGateway, "upstream_redirect",
			"the provider answered with a redirect (" + strconv.Itoa(resp.StatusCode) + "), which the gateway does not follow"})
		return
	}

	copyHeaders(w.Header(), resp.Header, dropResponseHeaders)
	c.overheadMS = ms(c.sentAt.Sub(c.start) + p.now().Sub(c.headersAt))
	c.hdr.set(w.Header(), "X-Gateway-Overhead-Ms", strconv.FormatFloat(c.overheadMS, 'f', 3, 64))
	if framing := prov.Framing(resp.Header.Get("Content-Type")); framing != nil {
		c.stream = true
		w.WriteHeader(resp.StatusCode)
		p.relayStream(ctx, cancel, w, framing, resp.Body, c)
		return
	}
	var upBody io.Reader = resp.Body
	if c.rules.HasResponseRules() && resp.StatusCode < 300 {
		buffered, err := io.ReadAll(io.LimitReader(resp.Body, captureLimit+1))
		if err == nil && len(buffered) <= captureLimit {
			p.respondEvaluated(w, c, resp.StatusCode, buffered)
			c.meterHeaders(resp.Header)
			return
		}
		upBody = io.MultiReader(bytes.NewReader(buffered), resp.Body) // too large to evaluate: relayed as is
	}
	w.WriteHeader(resp.StatusCode)
	p.relayBody(w, upBody, resp.ContentLength, c)
	c.meterHeaders(resp.Header)
}

// meterHeaders falls back to usage reported in response headers, for
// providers that report it there (provider.HeaderMeter).
func (c *call) meterHeaders(h http.Header) {
	if hm, ok := c.prov.(provider.HeaderMeter); ok && !c.usage.Known {
		c.usage = hm.MeterHeaders(h, c.usage)
	}
}

// respondEvaluated applies response-direction rules to a complete JSON
// response: block → provider-shaped 400, redact → the redacted body.
func (p *Proxy) respondEvaluated(w http.ResponseWriter, c *call, status int, body []byte) {
	c.firstByte = p.now()
	c.usage = c.prov.MeterJSON(body)
	res := c.rules.Evaluate(policy.Input{Provider: c.prov, Env: c.key.Env, Model: c.model, KeyID: c.key.ID, Body: body, Direction: policy.DirectionResponse})
	if c.applyPolicy(res) {
		v := c.violations[c.blockingIndex(res)]
		w.Header().Del("Content-Encoding")
		p.refuse(w, c, refusal{http.StatusBadRequest, "policy_violation",
			"response blocked by policy \"" + v.PolicyName + "\" (" + v.Type + "); violation id " + v.ID})
		c.outcome = usage.OutcomeBlocked
		return
	}
	w.WriteHeader(status)
	c.keepResponse(res.Body)
	if _, err := w.Write(res.Body); err != nil {
		c.outcome, c.errText = usage.OutcomeClientClosed, "client closed connection"
	}
}

// egressRefusal answers a tenant destination the egress policy refuses.
func egressRefusal(prov provider.Provider, err error) refusal {
	return refusal{http.StatusForbidden, "upstream_not_allowed", "this organisation's " + prov.Name() +
		" base URL is not an allowed destination (" + strings.TrimPrefix(err.Error(), egress.ErrBlocked.Error()+": ") + ")"}
}

func allowed(list []string, model string) bool {
	if len(list) == 0 {
		return true
	}
	for _, m := range list {
		if m == model {
			return true
		}
	}
	return false
}

func (p *Proxy) refuse(w http.ResponseWriter, c *call, ref refusal) {
	c.status = ref.status
	c.outcome = usage.OutcomeError
	c.errText = ref.code
	ref.write(w, c.prov)
}

func (p *Proxy) upstreamFailed(w http.ResponseWriter, r *http.Request, c *call, err error) {
	if c.open.ended.Load() && r.Context().Err() == nil {
		// Cut by the shutdown before the provider answered: another
		// replica can serve the retry.
		w.Header().Set("Retry-After", "1")
		p.refuse(w, c, refusal{http.StatusServiceUnavailable, "gateway_shutting_down", "the gateway is shutting down; retry the request"})
		c.errText = errTextShutdown
		return
	}
	if r.Context().Err() != nil {
		c.status, c.outcome, c.errText = 499, usage.OutcomeClientClosed, "client closed request"
		return
	}
	if errors.Is(err, egress.ErrBlocked) {
		p.refuse(w, c, egressRefusal(c.prov, err))
		return
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		p.refuse(w, c, refusal{http.StatusGatewayTimeout, "upstream_timeout", "the provider did not answer in time"})
		return
	}
	p.log.WarnContext(r.Context(), "upstream request failed", "provider", c.providerName(), "request_id", c.requestID, "err", err)
	p.refuse(w, c, refusal{http.StatusBadGateway, "upstream_unreachable", "the provider could not be reached"})
}

// pooledBody is the forwarded request body. Its buffer goes back to the pool
// once the transport reports the whole request handed to the connection
// (exactly once); a request never written, or whose write failed (no
// connection, cancelled, a reset), leaves it to the GC.
type pooledBody struct {
	bytes.Reader
	once  sync.Once
	put   func(*bytes.Buffer)
	buf   *bytes.Buffer
	trace httptrace.ClientTrace
}

// handOver returns the body for the upstream request and its context, which
// carries the trace hook that returns the buffer.
//
// The body is the *bytes.Reader behind io.NopCloser, a type net/http knows
// to be in memory: the transport then writes the headers and the body in one
// write (one TCP segment for a small request) over HTTP/1.1. Any other
// reader makes it flush the headers first, in case the body blocks: one more
// syscall and packet before the provider has the whole request (28 µs on
// loopback under make bench's first-chunk load, docs/benchmarks.md). HTTP/2
// writes its HEADERS and DATA frames apart either way. Since the transport's
// Close of such a body is a no-op, the buffer is returned by WroteRequest
// (over HTTP/1.1 the bytes are then copied into the connection's write
// buffer or sent), after which neither transport reads the body again: there
// is no GetBody, and neither replays a request whose body was read. A write
// that failed returns nothing: conservative, not needed for that reason.
func (b *pooledBody) handOver(ctx context.Context) (io.Reader, context.Context) {
	b.trace.WroteRequest = b.wrote
	return io.NopCloser(&b.Reader), httptrace.WithClientTrace(ctx, &b.trace)
}

func (b *pooledBody) wrote(info httptrace.WroteRequestInfo) {
	if info.Err == nil {
		b.once.Do(func() { b.put(b.buf) })
	}
}

var errTooLarge = errors.New("body too large")

// readBody reads r's body into buf through lr (the caller's, so that it
// is not allocated per request).
func readBody(r *http.Request, limit int64, buf *bytes.Buffer, lr *io.LimitedReader) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	coding, err := bodyEncoding(r.Header)
	if err != nil {
		return nil, err
	}
	if r.ContentLength > limit {
		return nil, errTooLarge
	}
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength) + 1)
	}
	*lr = io.LimitedReader{R: r.Body, N: limit + 1}
	n, err := buf.ReadFrom(lr)
	if err != nil {
		return nil, err
	}
	if n > limit {
		return nil, errTooLarge
	}
	if coding != "" {
		return decodeBody(coding, buf, limit) // decode.go
	}
	return buf.Bytes(), nil
}

// captureLimit bounds how much of a JSON response is kept for metering.
const captureLimit = 16 << 20

// relayReadSize is how much room relayBody gives each read of a response
// whose length is unknown.
const relayReadSize = 8 << 10

// relayBody relays a complete (non-stream) response, reading it into the
// buffer it is captured in for metering, and writing each read from there:
// no copy buffer of its own. A response larger than captureLimit is
// relayed through a buffer of relayReadSize and not metered.
func (p *Proxy) relayBody(w http.ResponseWriter, body io.Reader, size int64, c *call) {
	capture := p.getBuffer()
	defer p.putBuffer(capture)
	if size > 0 && size <= captureLimit {
		capture.Grow(int(size) + 1) // +1: the read that finds the end needs room
	}
	var spill []byte // past captureLimit
	for {
		var room []byte
		if capture.Len() < captureLimit {
			capture.Grow(min(relayReadSize, captureLimit-capture.Len()))
			room = capture.AvailableBuffer()
			room = room[:min(cap(room), captureLimit-capture.Len())]
		} else {
			if spill == nil {
				spill = make([]byte, relayReadSize)
			}
			room = spill
		}
		n, err := body.Read(room)
		if n > 0 {
			if c.firstByte.IsZero() {
				c.firstByte = p.now()
			}
			b := room[:n]
			if spill == nil {
				capture.Write(b) // b is the buffer's own free space: it is copied onto itself
			}
			c.keepResponse(b)
			if _, werr := w.Write(b); werr != nil {
				c.outcome, c.errText = usage.OutcomeClientClosed, "client closed connection"
				return
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			c.outcome, c.errText = usage.OutcomeError, "upstream body read failed"
			if c.open.ended.Load() {
				c.errText = errTextShutdown
			}
			return
		}
	}
	if spill == nil {
		c.usage = c.prov.MeterJSON(capture.Bytes())
	}
}

// applyPolicy records an evaluation's violations on the call and sets its
// outcome; it reports whether the request (or response) is blocked.
func (c *call) applyPolicy(res policy.Result) bool {
	for _, v := range res.Violations {
		uv := usage.Violation{ID: uuid.NewString(), PolicyID: v.PolicyID, PolicyName: v.PolicyName, Type: v.Type, Action: v.Action,
			Severity: v.Severity, Shadow: v.Shadow, Direction: v.Direction, Matches: make([]usage.Match, len(v.Matches))}
		for i, m := range v.Matches {
			uv.Matches[i] = usage.Match{Kind: m.Kind, Snippet: m.Snippet, Offset: m.Offset}
		}
		c.violations = append(c.violations, uv)
		if !v.Shadow && v.Action == policy.ActionFlag && c.outcome == usage.OutcomeOK {
			c.outcome = usage.OutcomeFlagged
		}
	}
	if res.Redacted && !res.Blocked {
		c.outcome = usage.OutcomeRedacted
	}
	return res.Blocked
}

// blockingIndex finds, among the call's violations, the one that blocked.
func (c *call) blockingIndex(res policy.Result) int {
	b := res.Blocking()
	first := len(c.violations) - len(res.Violations)
	for i, v := range res.Violations {
		if b != nil && v.PolicyID == b.PolicyID && v.Direction == b.Direction {
			return first + i
		}
	}
	return first
}

// loggedBodyLimit bounds each logged body.
const loggedBodyLimit = 64 << 10

// keepResponse copies response bytes for logging when the tenant asks for it.
func (c *call) keepResponse(b []byte) {
	if c.tenant == nil || !c.tenant.LogResponseBodies {
		return
	}
	if room := loggedBodyLimit - c.respBody.Len(); room > 0 {
		c.respBody.Write(b[:min(len(b), room)])
	}
}

// loggedBody prepares a body for the usage log: redacted if asked, bounded.
func (p *Proxy) loggedBody(c *call, direction string, b []byte) *string {
	if c.tenant.RedactLoggedBodies && p.opts.RedactBody != nil {
		b = p.opts.RedactBody(c.prov, direction, b)
	}
	if len(b) > loggedBodyLimit {
		b = b[:loggedBodyLimit]
	}
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	return &s
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// record publishes the usage event of a call.
func (p *Proxy) record(r *http.Request, c *call, status int) {
	end := p.now()
	c.status = status
	p.opts.Metrics.observe(c.providerName(), status, c.outcome, c.overheadMS, ms(end.Sub(c.start)), c.tr.serverSpan())
	if c.key == nil || c.tenant == nil {
		return // unauthenticated: nothing to attribute
	}
	// One allocation for the event and the values its optional fields
	// point to.
	box := &struct {
		ev             usage.Event
		pt, ct, tt, ca int64
		ttfb           float64
		usd            money.USD
	}{}
	ev := &box.ev
	*ev = usage.Event{
		RequestID: c.requestID, CreatedAt: c.start.UTC(), TenantID: c.key.TenantID, Env: c.key.Env,
		KeyID: c.key.ID, KeyName: c.key.Name, Provider: c.prov.Name(), Model: c.model,
		Path: c.target.Path, StatusCode: status, Stream: c.stream, LatencyMS: ms(end.Sub(c.start)),
		Outcome: c.outcome, Error: c.errText,
	}
	if status >= 400 && c.outcome == usage.OutcomeOK {
		ev.Outcome = usage.OutcomeError
	}
	ev.Violations = c.violations // the ingester derives violation_ids from them
	if c.tr != nil {
		ev.Traceparent = c.tr.traceparent()
	}
	if c.tenant.LogRequestBodies && c.reqBody != nil {
		ev.RequestBody = p.loggedBody(c, policy.DirectionRequest, c.reqBody)
	}
	if c.tenant.LogResponseBodies && c.respBody.Len() > 0 {
		ev.ResponseBody = p.loggedBody(c, policy.DirectionResponse, c.respBody.Bytes())
	}
	if !c.firstByte.IsZero() {
		box.ttfb = ms(c.firstByte.Sub(c.start))
		ev.TTFBMS = &box.ttfb
	}
	if c.usage.Model != "" && ev.Model == "" {
		ev.Model = c.usage.Model
	}
	if c.usage.Known {
		box.pt, box.ct, box.tt, box.ca = c.usage.PromptTokens, c.usage.CompletionTokens, c.usage.TotalTokens, c.usage.CachedTokens
		ev.PromptTokens, ev.CompletionTokens, ev.TotalTokens, ev.CachedTokens = &box.pt, &box.ct, &box.tt, &box.ca
		if p.opts.Prices != nil {
			if usd, ok := p.opts.Prices.Cost(ev.Model, box.pt, box.ca, box.ct); ok {
				box.usd = usd
				ev.CostUSD = &box.usd
			}
		}
	}
	p.pub.Publish(ev)
}
