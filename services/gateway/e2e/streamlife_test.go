package e2e

// Stream lifecycle (docs/decisions.md, "Stream keep-alives" and "Graceful
// stop"): streams survive an edge that cuts idle connections, and a
// gateway stopping ends the streams still open with an error their SDKs
// raise, recording their usage.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go"
	anthropicopt "github.com/anthropics/anthropic-sdk-go/option"
	"github.com/jackc/pgx/v5"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/azure"
	"github.com/openai/openai-go/v3/option"
	"google.golang.org/genai"
)

// idleCuttingEdge is a TCP proxy in front of addr that closes a connection
// once the server has sent nothing toward the client for idle, as an edge
// with an origin read timeout does (CloudFront's is 30 s by default).
func idleCuttingEdge(t *testing.T, addr string, idle time.Duration) string {
	t.Helper()
	l := listen(t)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				up, err := net.Dial("tcp", addr)
				if err != nil {
					return
				}
				defer up.Close()
				go func() { _, _ = io.Copy(up, c); _ = up.(*net.TCPConn).CloseWrite() }()
				buf := make([]byte, 32<<10)
				for {
					_ = up.SetReadDeadline(time.Now().Add(idle))
					n, err := up.Read(buf)
					if n > 0 {
						if _, werr := c.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						return // a timeout is the edge cutting the idle connection
					}
				}
			}()
		}
	}()
	return "http://" + l.Addr().String()
}

// sdkStream is one official SDK's streamed chat: the text of each event
// it yields, or its error.
type sdkStream func(ctx context.Context, base, key, model string) (chunks []string, err error)

var sdkStreams = map[string]struct {
	model  string
	stream sdkStream
}{
	"openai": {"gpt-4o-mini", func(ctx context.Context, base, key, model string) ([]string, error) {
		c := openai.NewClient(option.WithBaseURL(base+"/trueportai-services/openai/v1/"), option.WithAPIKey(key), option.WithMaxRetries(0))
		st := c.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{Model: model,
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Hello through the edge")}})
		var out []string
		for st.Next() {
			ch := st.Current()
			if len(ch.Choices) == 0 {
				return out, fmt.Errorf("openai: an event without choices: %s", ch.RawJSON())
			}
			out = append(out, ch.Choices[0].Delta.Content)
		}
		return out, st.Err()
	}},
	"azure": {"gpt4o-deploy", func(ctx context.Context, base, key, model string) ([]string, error) {
		c := openai.NewClient(azure.WithEndpoint(base+"/trueportai-services/azure/myresource", "2024-10-21"),
			azure.WithAPIKey(key), azure.WithUnsafeAllowHTTP(), option.WithMaxRetries(0))
		st := c.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{Model: model,
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Hello through the edge")}})
		var out []string
		for st.Next() {
			ch := st.Current()
			if len(ch.Choices) == 0 {
				return out, fmt.Errorf("azure: an event without choices: %s", ch.RawJSON())
			}
			out = append(out, ch.Choices[0].Delta.Content)
		}
		return out, st.Err()
	}},
	"anthropic": {"claude-sonnet-4-5", func(ctx context.Context, base, key, model string) ([]string, error) {
		c := anthropic.NewClient(anthropicopt.WithBaseURL(base+"/trueportai-services/anthropic/"), anthropicopt.WithAPIKey(key), anthropicopt.WithMaxRetries(0))
		st := c.Messages.NewStreaming(ctx, anthropic.MessageNewParams{Model: anthropic.Model(model), MaxTokens: 256,
			Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Hello through the edge"))}})
		var out []string
		for st.Next() {
			ev := st.Current()
			out = append(out, ev.Type+":"+ev.Delta.Text)
		}
		return out, st.Err()
	}},
	"google": {"gemini-2.5-flash", func(ctx context.Context, base, key, model string) ([]string, error) {
		c, err := genai.NewClient(ctx, &genai.ClientConfig{APIKey: key, Backend: genai.BackendGeminiAPI,
			HTTPOptions: genai.HTTPOptions{BaseURL: base + "/trueportai-services/google/", APIVersion: "v1beta"}})
		if err != nil {
			return nil, err
		}
		var out []string
		for ch, err := range c.Models.GenerateContentStream(ctx, model, genai.Text("Hello through the edge"), nil) {
			if err != nil {
				return out, err
			}
			out = append(out, ch.Text())
		}
		return out, nil
	}},
}

// rawStream posts a streamed request and returns the body as received.
func rawStream(t *testing.T, url, key, body string) []byte {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("x-api-key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("raw stream: %v", err)
		return nil
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("raw stream: %d, %v: %q", resp.StatusCode, err, b)
	}
	return b
}

// TestStreamKeepAlivesThroughSDKs: a provider that pauses 20 s mid-stream,
// behind an edge that cuts connections idle for 6 s. With keep-alives
// every 2 s each official SDK (OpenAI, Azure via openai-go, Anthropic,
// Google genai) reads the whole stream, exactly the events of the same
// stream without a pause, and the usage is the same; on the wire the
// keep-alives are there (SSE comments; Gemini's empty events), only
// between events.
func TestStreamKeepAlivesThroughSDKs(t *testing.T) {
	t.Parallel()
	s := newStack(t, "STREAM_KEEPALIVE_INTERVAL=2s")
	ts := s.setupTenant("keepalive-" + randHex(3))
	edge := idleCuttingEdge(t, strings.TrimPrefix(s.gatewayURL, "http://"), 6*time.Second)
	const pause = "-pause-20s"
	ctx := context.Background()

	var wg sync.WaitGroup
	for name, sdk := range sdkStreams {
		wg.Go(func() {
			want, err := sdk.stream(ctx, s.gatewayURL, ts.apiKey, sdk.model)
			if err != nil || len(want) < 3 {
				t.Errorf("%s without a pause: %d events, %v", name, len(want), err)
				return
			}
			start := time.Now()
			got, err := sdk.stream(ctx, edge, ts.apiKey, sdk.model+pause)
			took := time.Since(start)
			if err != nil {
				t.Errorf("%s through the edge with a 20 s pause: %v after %s and %d events", name, err, took, len(got))
				return
			}
			if took < 20*time.Second {
				t.Errorf("%s: the stream took %s, the provider did not pause", name, took)
			}
			if strings.Join(got, "|") != strings.Join(want, "|") {
				t.Errorf("%s: events with the pause differ from those without:\n got %q\nwant %q", name, got, want)
			}
		})
	}
	// The wire, read raw in the same 20 s: OpenAI's comments and Gemini's
	// empty events between the events.
	var openaiRaw, geminiRaw []byte
	wg.Go(func() {
		openaiRaw = rawStream(t, s.gatewayURL+"/trueportai-services/openai/v1/chat/completions", ts.apiKey,
			`{"model":"gpt-4o-mini-raw`+pause+`","stream":true,"messages":[{"role":"user","content":"raw"}]}`)
	})
	wg.Go(func() {
		geminiRaw = rawStream(t, s.gatewayURL+"/trueportai-services/google/v1beta/models/gemini-2.5-flash-raw"+pause+":streamGenerateContent?alt=sse", ts.apiKey,
			`{"contents":[{"role":"user","parts":[{"text":"raw"}]}]}`)
	})
	wg.Wait()

	comments := strings.Count(string(openaiRaw), ": keep-alive\n\n")
	if comments < 5 {
		t.Errorf("%d keep-alive comments in a stream silent for 20 s with a 2 s interval, want about 8-10:\n%q", comments, openaiRaw)
	}
	for _, ev := range strings.Split(strings.ReplaceAll(string(openaiRaw), ": keep-alive\n\n", ""), "\n\n") {
		if ev != "" && !strings.HasPrefix(ev, "data: ") {
			t.Errorf("openai: keep-alive inside an event? %q", ev)
		}
	}
	// Gemini's events end with CRLF CRLF; an empty event is one more.
	empties := strings.Count(string(geminiRaw), "\r\n\r\n") - strings.Count(string(geminiRaw), "data: ")
	if empties < 5 {
		t.Errorf("%d empty keep-alive events in a Gemini stream silent for 20 s, want about 8-10:\n%q", empties, geminiRaw)
	}
	if strings.Contains(string(geminiRaw), ": keep-alive") {
		t.Error("a Gemini stream got an SSE comment: the genai SDK raises on it")
	}
	for _, ev := range strings.Split(string(geminiRaw), "\r\n\r\n") {
		if ev != "" && !strings.HasPrefix(ev, "data: ") {
			t.Errorf("gemini: keep-alive inside an event? %q", ev)
		}
	}

	// Usage: every stream metered, the paused ones exactly as the others
	// (keep-alives count for nothing).
	page := s.waitLogs(ts.scopedToken, 2*len(sdkStreams)+2)
	tokens := map[string]string{}
	for _, r := range page.Items {
		if r.Outcome != "ok" || !r.Stream || r.PromptTokens == nil || r.CompletionTokens == nil {
			t.Errorf("usage row %+v", r)
			continue
		}
		tokens[r.Model] = fmt.Sprint(*r.PromptTokens, "/", *r.CompletionTokens)
	}
	for name, sdk := range sdkStreams {
		if tokens[sdk.model] == "" || tokens[sdk.model+pause] != tokens[sdk.model] {
			t.Errorf("%s: tokens with the pause %q, without %q", name, tokens[sdk.model+pause], tokens[sdk.model])
		}
	}
	if err := s.metricAtLeast(s.gatewayInternalURL, "trueport_proxy_stream_keepalives_total", 20); err != nil {
		t.Error(err)
	}
}

// metricAtLeast checks that a counter on a /metrics page is at least min.
func (s *stack) metricAtLeast(base, series string, min float64) error {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var v float64
		if name, rest, ok := strings.Cut(sc.Text(), " "); ok && name == series {
			if _, err := fmt.Sscan(rest, &v); err == nil && v >= min {
				return nil
			}
			return fmt.Errorf("%s = %s, want at least %v", series, rest, min)
		}
	}
	return fmt.Errorf("%s not on %s/metrics", series, base)
}

// TestShutdownEndsOpenStreams: SIGTERM while streams are open. Readiness
// turns false at once and the gateway keeps serving for the drain delay
// (1 s); the streams then have the grace period (2 s); those still open get
// their provider's error event, which each SDK raises (OpenAI, Anthropic,
// Google genai: no silent end), the process exits soon after, and each
// stream's usage row exists with the cut recorded (restarted gateway's
// ingester, Postgres queried by request id).
func TestShutdownEndsOpenStreams(t *testing.T) {
	t.Parallel()
	s := newStack(t, "SHUTDOWN_DRAIN_DELAY=1s", "SHUTDOWN_GRACE=2s")
	ts := s.setupTenant("shutdown-" + randHex(3))
	ctx := context.Background()
	const pause = "-pause-10m"

	type result struct {
		requestID string
		first     time.Time // first event read
		err       error
		at        time.Time // the stream ended
	}
	results := map[string]*result{"openai": {}, "anthropic": {}, "google": {}}
	started := make(chan string, len(results))
	var wg sync.WaitGroup
	wg.Go(func() {
		r := results["openai"]
		var resp *http.Response
		c := openai.NewClient(option.WithBaseURL(s.gatewayURL+"/trueportai-services/openai/v1/"), option.WithAPIKey(ts.apiKey),
			option.WithMaxRetries(0), option.WithResponseInto(&resp))
		st := c.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{Model: "gpt-4o-mini" + pause,
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("a long answer")}})
		for st.Next() {
			if r.first.IsZero() {
				r.first, r.requestID = time.Now(), resp.Header.Get("X-Request-Id")
				started <- "openai"
			}
		}
		r.err, r.at = st.Err(), time.Now()
	})
	wg.Go(func() {
		r := results["anthropic"]
		var resp *http.Response
		c := anthropic.NewClient(anthropicopt.WithBaseURL(s.gatewayURL+"/trueportai-services/anthropic/"), anthropicopt.WithAPIKey(ts.apiKey),
			anthropicopt.WithMaxRetries(0), anthropicopt.WithResponseInto(&resp))
		st := c.Messages.NewStreaming(ctx, anthropic.MessageNewParams{Model: "claude-sonnet-4-5" + pause, MaxTokens: 256,
			Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("a long answer"))}})
		for st.Next() {
			if r.first.IsZero() {
				r.first, r.requestID = time.Now(), resp.Header.Get("X-Request-Id")
				started <- "anthropic"
			}
		}
		r.err, r.at = st.Err(), time.Now()
	})
	wg.Go(func() {
		r := results["google"]
		c, err := genai.NewClient(ctx, &genai.ClientConfig{APIKey: ts.apiKey, Backend: genai.BackendGeminiAPI,
			HTTPOptions: genai.HTTPOptions{BaseURL: s.gatewayURL + "/trueportai-services/google/", APIVersion: "v1beta"}})
		if err != nil {
			r.err = err
			started <- "google"
			return
		}
		for ch, err := range c.Models.GenerateContentStream(ctx, "gemini-2.5-flash"+pause, genai.Text("a long answer"), nil) {
			if err != nil {
				r.err = err
				break
			}
			if r.first.IsZero() {
				r.first = time.Now()
				if ch.SDKHTTPResponse != nil {
					r.requestID = ch.SDKHTTPResponse.Headers.Get("X-Request-Id")
				}
				started <- "google"
			}
		}
		r.at = time.Now()
	})
	for range results {
		select {
		case <-started:
		case <-time.After(30 * time.Second):
			t.Fatal("the streams did not start")
		}
	}

	sigterm := time.Now()
	if err := s.gateway.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Drain delay: unready at once, yet still serving.
	time.Sleep(200 * time.Millisecond)
	if resp, err := http.Get(s.gatewayURL + "/trueportai-services/health"); err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("health during the drain delay: %v %v, want 503", err, resp)
	} else {
		resp.Body.Close()
	}
	oc := openai.NewClient(option.WithBaseURL(s.gatewayURL+"/trueportai-services/openai/v1/"), option.WithAPIKey(ts.apiKey), option.WithMaxRetries(0))
	if _, err := oc.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "gpt-4o-mini",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("during the drain")}}); err != nil {
		t.Errorf("a request during the drain delay: %v", err)
	}
	if d := time.Since(sigterm); d > time.Second {
		t.Logf("the drain-delay checks ran %s after SIGTERM (loaded machine)", d)
	}

	select {
	case <-s.gateway.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("the gateway did not exit within 20 s of SIGTERM (drain 1 s + grace 2 s + 4 s to end streams)")
	}
	exited := time.Since(sigterm)
	wg.Wait()
	if exited > 12*time.Second {
		t.Errorf("the gateway exited %s after SIGTERM, want within drain 1 s + grace 2 s + 4 s + flushing", exited)
	}
	for name, r := range results {
		if r.requestID == "" {
			t.Errorf("%s: no request id", name)
		}
		if ended := r.at.Sub(sigterm); ended < 3*time.Second {
			t.Errorf("%s: the stream ended %s after SIGTERM, before the drain delay and the grace period were over", name, ended)
		}
		switch name {
		case "openai":
			if r.err == nil || !strings.Contains(r.err.Error(), "gateway_shutting_down") {
				t.Errorf("openai SDK: %v, want the stream's error event", r.err)
			}
		case "anthropic":
			var ae *anthropic.Error
			if !errors.As(r.err, &ae) || !strings.Contains(r.err.Error(), "overloaded_error") {
				t.Errorf("anthropic SDK: %v (%T), want its API error from the error event", r.err, r.err)
			}
		case "google":
			var ge genai.APIError
			if !errors.As(r.err, &ge) || ge.Code != http.StatusServiceUnavailable || ge.Status != "UNAVAILABLE" {
				t.Errorf("genai SDK: %v (%T), want APIError 503 UNAVAILABLE", r.err, r.err)
			}
		}
	}
	if t.Failed() {
		return
	}
	if !strings.Contains(s.gateway.logs(), "ending open calls") {
		t.Error("the gateway did not log ending the open calls")
	}

	// The usage rows: the events were published before the exit; a
	// restarted gateway's ingester stores them.
	s.restartGateway()
	dsn := s.envValue("GATEWAY_DATABASE_URL")
	for name, r := range results {
		eventually(t, 60*time.Second, func() error {
			row, err := usageRow(dsn, r.requestID)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			if row.outcome != "error" || !strings.Contains(row.errText, "shutdown") || !row.stream || row.status != http.StatusOK {
				t.Fatalf("%s: usage row %+v, want the stream cut by the shutdown", name, row)
			}
			if name == "anthropic" && row.promptTokens == nil {
				t.Fatalf("anthropic: the prompt tokens metered before the cut are missing: %+v", row)
			}
			return nil
		})
	}
}

type usageRowData struct {
	outcome, errText string
	stream           bool
	status           int
	promptTokens     *int64
}

// usageRow reads the usage row of a request id.
func usageRow(dsn, requestID string) (usageRowData, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return usageRowData{}, err
	}
	defer conn.Close(context.Background())
	var r usageRowData
	err = conn.QueryRow(ctx, `SELECT outcome, error, stream, status_code, prompt_tokens FROM usage_logs WHERE request_id = $1`, requestID).
		Scan(&r.outcome, &r.errText, &r.stream, &r.status, &r.promptTokens)
	if errors.Is(err, pgx.ErrNoRows) {
		return r, fmt.Errorf("no usage row for request %s yet", requestID)
	}
	return r, err
}
