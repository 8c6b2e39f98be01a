// Package provider is the seam between the provider-agnostic data plane
// (proxy, policy, metering) and the wire format of each upstream LLM API.
//
// Everything the gateway knows about one API family — its route and path
// rules, upstream URL, credential injection, the client headers it accepts,
// where the request names its model and streaming, which JSON paths carry the
// text policies look at, how its responses and streams report usage, and the
// shape of its errors — lives in one package under internal/provider that
// implements Provider. internal/provider/registry lists them; adding a
// provider is one new package and one line there (docs/providers.md).
package provider

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"trueportai/services/gateway/internal/metering"
	"trueportai/services/gateway/internal/textpath"
)

// RoutePrefix is the common prefix of every proxy route.
const RoutePrefix = "/trueportai-services/"

// Provider is one upstream API family. Implementations are immutable after
// construction and safe for concurrent use; no method does I/O.
type Provider interface {
	// Name is the provider's name in tenant configs (providers.<name>.*),
	// policy scopes, usage rows and metrics.
	Name() string
	// Prefix is the proxy route prefix, e.g. "/trueportai-services/openai/v1/".
	Prefix() string
	// Route checks and decomposes rest, the escaped request path below
	// Prefix. It derives the target only from the path (never from the
	// body or headers); an error is ErrBadPath.
	Route(rest string) (Target, error)
	// MissingCredential names the config key the tenant must set before
	// cred can be used for t, or returns "" when cred is usable.
	MissingCredential(t *Target, cred Credential) string
	// Inspect reads what the request asks for: its model and whether it
	// streams (from the target's path, the tenant's settings or the body).
	// A model that cannot be determined is "" (the proxy then refuses the
	// request for keys and tenants with model allowlists, unless ModelFree).
	Inspect(t *Target, cred Credential, body []byte) Request
	// ModelFree reports whether a request with this method to t runs no
	// model and only reads (listing models): it may pass model allowlists
	// without naming a model.
	ModelFree(t *Target, method string) bool
	// TextPaths are the JSON paths whose strings policies inspect and may
	// redact, for request bodies or (response=true) response bodies.
	TextPaths(response bool) *textpath.Trie
	// Prepare returns the body to send upstream; it may differ from body
	// (e.g. asking an OpenAI-style stream to report usage). hideUsage is
	// true when what was added must be hidden from the client again.
	Prepare(t *Target, req Request, body []byte) (out []byte, hideUsage bool)
	// URL is the upstream URL for the target; rawQuery is the client's query
	// without the gateway's own key parameter. tenant is true when the
	// tenant chose the destination (its base URL): the proxy then dials it
	// under the egress policy. A *Refusal error is answered as it says.
	URL(t *Target, cred Credential, rawQuery string) (dest string, tenant bool, err error)
	// ForwardHeader reports whether a client request header (canonical
	// name) may be forwarded upstream. Credentials, hop-by-hop and
	// forwarding headers never are, whatever this says.
	ForwardHeader(name string) bool
	// Authorize puts the credential on the upstream request (and signs it
	// where the API wants signatures). body is the exact body being sent.
	Authorize(req *http.Request, cred Credential, body []byte) error
	// MeterJSON reads usage from a complete (non-streamed) response body.
	MeterJSON(body []byte) metering.Usage
	// Framing is the framing of a streamed response with this content type,
	// nil when the response is not a stream.
	Framing(contentType string) Framing
	// NewStreamMeter meters one streamed response; with hideUsage it drops
	// the usage-only events that Prepare asked for.
	NewStreamMeter(hideUsage bool) metering.StreamMeter
	// ErrorBody renders an answer of the gateway itself (a refusal) in the
	// provider's error shape, so that its SDKs surface it.
	ErrorBody(status int, code, message string) []byte
}

// Target is where a proxied request goes, derived from the route only.
type Target struct {
	// Rest is the checked, escaped path below the upstream base URL.
	Rest string
	// Path is the path recorded in usage rows.
	Path string
	// Credential is the key of the tenant's credential in its providers
	// map (the provider's name, or "compat.<upstream>" and the like).
	Credential string
	// Resource names an instance the path addresses: the Azure resource,
	// the OpenAI-compatible upstream's name.
	Resource string
	// Deployment is the Azure deployment.
	Deployment string
	// Model and Stream are what the path says (Gemini's models/{m}:method,
	// the Azure deployment, Bedrock's model id), if anything.
	Model  string
	Stream bool
}

// Request is what a request body (or path) asks for.
type Request struct {
	Model  string
	Stream bool
}

// Credential is a tenant's settings for one provider, as decrypted by the
// platform. Which fields a provider needs is its own business
// (MissingCredential).
type Credential struct {
	APIKey  string
	BaseURL string
	// AWS credentials (Bedrock).
	Region          string
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	// Azure: the resources the tenant's key may be sent to (empty: any),
	// and what model each deployment runs (absent: the deployment name).
	Resources   []string
	Deployments map[string]string
}

// Refusal is an error a provider returns when a request must not be sent:
// the proxy answers Status with Code and Message in the provider's shape.
type Refusal struct {
	Status  int
	Code    string
	Message string
}

func (r *Refusal) Error() string { return r.Message }

// ErrBadPath is returned for a path that is not allowed.
var ErrBadPath = errors.New("path is not allowed")

// CheckRest refuses anything that could leave the provider base once joined
// or decoded by the upstream: dot segments (plain or encoded), empty segments,
// encoded slashes/backslashes/percent signs, control characters, query or
// fragment characters, and paths over 2 KiB.
func CheckRest(rest string) error {
	if rest == "" || len(rest) > 2048 {
		return ErrBadPath
	}
	for i := 0; i < len(rest); i++ {
		if rest[i] == '\\' {
			return ErrBadPath
		}
		if rest[i] == '%' && i+2 < len(rest) {
			switch strings.ToLower(rest[i+1 : i+3]) {
			case "2e", "2f", "5c", "25", "00":
				return ErrBadPath
			}
		}
	}
	dec, err := url.PathUnescape(rest)
	if err != nil {
		return ErrBadPath
	}
	for seg := range strings.SplitSeq(dec, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return ErrBadPath
		}
	}
	for i := 0; i < len(dec); i++ {
		if dec[i] < 0x20 || dec[i] == 0x7f || dec[i] == '?' || dec[i] == '#' {
			return ErrBadPath
		}
	}
	return nil
}

// SimpleRoute is Route for providers whose whole path below the prefix is
// appended to one base URL.
func SimpleRoute(name, rest string) (Target, error) {
	if err := CheckRest(rest); err != nil {
		return Target{}, err
	}
	return Target{Rest: rest, Path: "/" + rest, Credential: name}, nil
}

// JoinURL joins a base URL, a checked sub-path and a query, and insists on
// an absolute http(s) URL.
func JoinURL(base, rest, rawQuery string) (string, error) {
	out := strings.TrimRight(base, "/") + "/" + rest
	if rawQuery != "" {
		out += "?" + rawQuery
	}
	pu, err := url.Parse(out)
	if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
		return "", ErrBadPath
	}
	return out, nil
}

// BaseURL returns the tenant's base URL override, else the operator's.
func BaseURL(cred Credential, operator string) string {
	if cred.BaseURL != "" {
		return cred.BaseURL
	}
	return operator
}

// HeaderSet is an allowlist of header names (canonical form) and name
// prefixes.
type HeaderSet struct {
	names    map[string]bool
	prefixes []string
}

// CommonHeaders are forwarded to every provider.
var CommonHeaders = []string{"Accept", "Content-Type", "User-Agent"}

// NewHeaderSet builds an allowlist; a name ending in "*" is a prefix.
func NewHeaderSet(lists ...[]string) *HeaderSet {
	s := &HeaderSet{names: map[string]bool{}}
	for _, list := range lists {
		for _, n := range list {
			if p, ok := strings.CutSuffix(n, "*"); ok {
				s.prefixes = append(s.prefixes, http.CanonicalHeaderKey(p))
				continue
			}
			s.names[http.CanonicalHeaderKey(n)] = true
		}
	}
	return s
}

// Allows reports whether a canonical header name is in the set.
func (s *HeaderSet) Allows(name string) bool {
	if s.names[name] {
		return true
	}
	for _, p := range s.prefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// EnvURL reads an operator's upstream base URL from the environment (def
// when unset) and checks it is an absolute http(s) URL.
func EnvURL(getenv func(string) string, name, def string) (string, error) {
	v := strings.TrimSpace(getenv(name))
	if v == "" {
		v = def
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%s must be an absolute http(s) URL, got %q", name, v)
	}
	return strings.TrimRight(v, "/"), nil
}

// Framing splits a streamed response body into events.
type Framing interface {
	// Framer starts reading r. The caller must call Release when done.
	Framer(r io.Reader) Framer
}

// Framer reads one event at a time.
type Framer interface {
	// Next reads the next event: raw is its bytes as received (what is
	// forwarded), name and data what a StreamMeter sees. The slices are
	// valid until the next call. At the end of the stream it returns what
	// was read of an unfinished event (possibly nothing) and the error
	// (io.EOF for a clean end).
	Next() (raw, name, data []byte, err error)
	// Buffered reports whether a complete next event has already arrived.
	Buffered() bool
	// Release returns the framer's buffers.
	Release()
}

// HeaderMeter is implemented by providers that may report usage in
// response headers rather than in the body (Bedrock's InvokeModel).
type HeaderMeter interface {
	// MeterHeaders returns the usage the headers report, else u.
	MeterHeaders(h http.Header, u metering.Usage) metering.Usage
}

// Paths are a provider's compiled text paths; embedded, they implement
// TextPaths.
type Paths struct{ Request, Response *textpath.Trie }

// TextPaths implements Provider.
func (p Paths) TextPaths(response bool) *textpath.Trie {
	if response {
		return p.Response
	}
	return p.Request
}

// Upstream is an operator's base URL that a tenant's providers.<name>.base_url
// overrides; embedded, it implements URL.
type Upstream struct{ Base string }

// URL implements Provider: the tenant's base URL or the operator's, then
// the checked path and the query.
func (u Upstream) URL(t *Target, c Credential, rawQuery string) (string, bool, error) {
	dest, err := JoinURL(BaseURL(c, u.Base), t.Rest, rawQuery)
	return dest, c.BaseURL != "", err
}

// ListsModels is ModelFree for APIs whose only model-independent read is
// GET models (the model list).
func ListsModels(t *Target, method string) bool {
	return (method == http.MethodGet || method == http.MethodHead) && t.Rest == "models"
}

// AsIs sends request bodies unchanged; embedded, it implements Prepare.
type AsIs struct{}

// Prepare implements Provider.
func (AsIs) Prepare(_ *Target, _ Request, body []byte) ([]byte, bool) { return body, false }
