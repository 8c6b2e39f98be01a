// Package fakeprovider implements a fake LLM provider for development, tests
// and benchmarks of the AI gateway.
//
// One handler serves five provider dialects, each under its own prefix:
//
//	/openai/v1/...                                          OpenAI (chat, embeddings, models, responses)
//	/azure/{resource}/openai/deployments/{deployment}/...   Azure OpenAI (chat, embeddings)
//	/anthropic/v1/...                                       Anthropic (messages, count_tokens, models)
//	/google/v1beta/...                                      Google Gemini (generate, stream, embed, count, models)
//	/bedrock/{region}/model/{modelId}/...                   AWS Bedrock Runtime (converse, converse-stream,
//	                                                        invoke, invoke-with-response-stream)
//
// The Bedrock prefix stands for https://bedrock-runtime.{region}.amazonaws.com:
// the AWS SDK's bedrockruntime client works against it unchanged when its
// BaseEndpoint is http://HOST/bedrock/{region}. Bedrock requests are
// authenticated with AWS Signature Version 4, verified when
// Config.AWSCredentials holds the secret of the access key, or with a Bedrock
// API key (Authorization: Bearer; the SDK sends one over HTTPS only). Every
// model id exists, and InvokeModel speaks the Anthropic Claude body format
// whatever the model id.
//
// Responses are deterministic: the generated text is a fixed lorem-ipsum
// sentence split into chunks, prompt tokens are ceil(chars/4) of the request
// text and completion tokens are the number of generated words, so JSON and
// streaming answers carry the same text and the same usage.
//
// Behaviour can be tuned per request with the headers x-fake-delay-ms,
// x-fake-chunks, x-fake-chunk-delay-ms, x-fake-pause-ms and x-fake-status.
// The pause (a silence in the middle of a stream) can also be asked for in
// the model name, which passes through a gateway: "gpt-4o-mini-pause-20s".
package fakeprovider

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"time"
)

// Config holds the default behaviour of the fake provider. Every field can be
// overridden per request with the x-fake-* headers.
type Config struct {
	Delay      time.Duration // before the first byte (default 0)
	Chunks     int           // number of content chunks in a stream (default 5)
	ChunkDelay time.Duration // between stream chunks (default 0)

	// AWSCredentials maps AWS access key ids to their secret access keys.
	// When it is not empty, Bedrock requests signed with SigV4 must use one
	// of these keys and carry a valid signature; when it is empty, any
	// well-formed SigV4 Authorization header is accepted.
	AWSCredentials map[string]string
}

const (
	defaultChunks = 5
	maxChunks     = 10000
	maxBodyBytes  = 32 << 20
)

// withDefaults returns cfg with zero or out-of-range values replaced by defaults.
func (cfg Config) withDefaults() Config {
	if cfg.Delay < 0 {
		cfg.Delay = 0
	}
	if cfg.ChunkDelay < 0 {
		cfg.ChunkDelay = 0
	}
	if cfg.Chunks <= 0 {
		cfg.Chunks = defaultChunks
	}
	cfg.Chunks = min(cfg.Chunks, maxChunks)
	cfg.AWSCredentials = maps.Clone(cfg.AWSCredentials)
	return cfg
}

// server holds the state shared by all routes.
type server struct {
	cfg Config
	log *slog.Logger
}

// NewHandler returns an http.Handler serving every fake provider route.
// A nil logger discards logs.
func NewHandler(cfg Config, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &server{cfg: cfg.withDefaults(), log: log}
	return s.logRequests(s.routes())
}

// routes registers every route on a new ServeMux.
func (s *server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", health)
	s.mountOpenAI(mux)
	s.mountAzure(mux)
	s.mountAnthropic(mux)
	s.mountGemini(mux)
	s.mountBedrock(mux)
	mux.HandleFunc("/", notFound)
	return mux
}

// endpoint is a provider route handler. It runs after authentication, the
// initial delay and fault injection.
type endpoint func(w http.ResponseWriter, r *http.Request, c *call)

// call carries the per-request settings an endpoint needs.
type call struct {
	opts    options
	dialect *dialect
	body    []byte
	start   time.Time // when the request arrived
	// model, when set, replaces the model named in the request body (Azure
	// takes it from the deployment in the path).
	model string
}

// fail answers an error in the provider's own shape.
func (c *call) fail(w http.ResponseWriter, e apiError) {
	c.dialect.writeError(w, e)
}

// badRequest answers a 400 with msg in the provider's own shape.
func (c *call) badRequest(w http.ResponseWriter, msg string) {
	c.fail(w, apiError{status: http.StatusBadRequest, message: msg})
}

// decode unmarshals the JSON request body into v, answering 400 on failure.
func (c *call) decode(w http.ResponseWriter, v any) bool {
	if err := json.Unmarshal(c.body, v); err != nil {
		c.badRequest(w, "invalid JSON body: "+err.Error())
		return false
	}
	return true
}

// modelOr returns the forced model of the call, or requested when none is forced.
func (c *call) modelOr(requested string) string {
	if c.model != "" {
		return c.model
	}
	return requested
}

// handle wraps ep with the steps shared by every provider route: request id,
// authentication (before reading the body, or after it for signatures over
// the payload), reading the body, initial delay and x-fake-status fault
// injection.
func (s *server) handle(d *dialect, ep endpoint) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		if d.requestIDHeader != "" {
			w.Header().Set(d.requestIDHeader, newID("req_"))
		}
		if d.check != nil {
			if e := d.check(r); e != nil {
				d.writeError(w, *e)
				return
			}
		}
		// Reading the whole body first lets net/http watch the connection,
		// so the request context is cancelled as soon as the client leaves.
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
		if err != nil {
			d.writeError(w, bodyError(err))
			return
		}
		if d.checkSigned != nil {
			if e := d.checkSigned(r, body); e != nil {
				d.writeError(w, *e)
				return
			}
		}
		opts := s.requestOptions(r.Header)
		if d, ok := modelPause(r.URL.Path, body); ok {
			opts.pause = d
		}
		if err := sleep(r.Context(), opts.delay); err != nil {
			return
		}
		if opts.status != 0 {
			d.writeError(w, injectedError(opts.status))
			return
		}
		ep(w, r, &call{opts: opts, dialect: d, body: body, start: start})
	}
}

// bodyError is the error answered when the request body cannot be read.
func bodyError(err error) apiError {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return apiError{status: http.StatusRequestEntityTooLarge, message: "request body too large"}
	}
	return apiError{status: http.StatusBadRequest, message: "reading request body: " + err.Error()}
}

// health answers the liveness probe.
func health(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// notFound answers any unknown path with a plain JSON error.
func notFound(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusNotFound, map[string]any{
		"error": map[string]any{
			"code":    http.StatusNotFound,
			"message": "no route for " + r.Method + " " + r.URL.Path,
		},
	})
}

// writeJSON answers status with v encoded as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"error":"encoding response failed"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// newID returns prefix followed by a random identifier.
func newID(prefix string) string {
	return prefix + rand.Text()
}

// logRequests logs every request at debug level once it has been answered.
func (s *server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		s.log.LogAttrs(r.Context(), slog.LevelDebug, "request",
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", rec.status),
			slog.Int64("bytes", rec.bytes),
			slog.Duration("duration", time.Since(start)),
			slog.Bool("canceled", r.Context().Err() != nil),
		)
	})
}

// statusRecorder captures the status and size of a response while keeping
// flushing available to the handlers.
type statusRecorder struct {
	http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
}

// WriteHeader records the status code.
func (r *statusRecorder) WriteHeader(code int) {
	if !r.wroteHeader {
		r.status = code
		r.wroteHeader = true
	}
	r.ResponseWriter.WriteHeader(code)
}

// Write records the number of bytes written.
func (r *statusRecorder) Write(b []byte) (int, error) {
	r.wroteHeader = true
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

// Flush forwards to the underlying writer when it supports flushing.
func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap exposes the underlying writer to http.ResponseController.
func (r *statusRecorder) Unwrap() http.ResponseWriter {
	return r.ResponseWriter
}
