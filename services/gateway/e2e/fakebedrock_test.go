package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"trueportai/services/gateway/internal/fakeprovider"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

const (
	// bedrockRegion is the region in the base endpoint of the Bedrock tests.
	bedrockRegion = "us-east-1"
	// bedrockModel is a model id with a ':' the SDK escapes as %3A.
	bedrockModel = "anthropic.claude-3-5-sonnet-20240620-v1:0"
	// testAccessKey and testSecret are the SigV4 credentials the fake knows.
	testAccessKey = "AKIDFAKEPROVIDER"
	testSecret    = "fake/secret+key"
	// invokeBody has a 12-character system prompt and 4 characters of
	// messages: 4 tokens.
	invokeBody = `{"anthropic_version":"bedrock-2023-05-31","max_tokens":1024,"system":"You are kind",` +
		`"messages":[{"role":"user","content":[{"type":"text","text":"Hi!!"}]}]}`
)

// knownCredentials is a configuration that verifies SigV4 signatures.
func knownCredentials() fakeprovider.Config {
	return fakeprovider.Config{AWSCredentials: map[string]string{testAccessKey: testSecret}}
}

// newBedrockServer starts the fake provider over TLS: the SDK sends bearer
// tokens over HTTPS only.
func newBedrockServer(t *testing.T, cfg fakeprovider.Config) *httptest.Server {
	t.Helper()
	srv := httptest.NewTLSServer(fakeprovider.NewHandler(cfg, nil))
	t.Cleanup(srv.Close)
	return srv
}

// memoryBodyTransport sends request bodies from memory. The SDK closes the
// request body as soon as the response headers arrive, and a closed SDK body
// answers io.EOF to the final read net/http makes after sending it (checking
// for bytes beyond Content-Length); the transport then drops the connection,
// cutting a streamed answer short. A local server answers before that read
// often enough to make stream tests flaky. A body net/http knows to be in
// memory is written and checked before anything is flushed, so it cannot race.
type memoryBodyTransport struct{ base http.RoundTripper }

// RoundTrip sends a copy of r whose body is read into memory first.
func (t memoryBodyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return t.base.RoundTrip(r)
	}
	b, err := io.ReadAll(r.Body)
	r.Body.Close()
	if err != nil {
		return nil, err
	}
	r = r.Clone(r.Context())
	r.Body = io.NopCloser(bytes.NewReader(b))
	return t.base.RoundTrip(r)
}

// staticCredentials returns a provider of fixed AWS credentials.
func staticCredentials(id, secret, token string) aws.CredentialsProvider {
	return aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: id, SecretAccessKey: secret, SessionToken: token, Source: "test"}, nil
	})
}

// bedrockClient returns an SDK client for the fake's us-east-1 endpoint that
// signs for region with the known credentials and does not retry.
func bedrockClient(srv *httptest.Server, region string, optFns ...func(*bedrockruntime.Options)) *bedrockruntime.Client {
	return bedrockruntime.New(bedrockruntime.Options{
		Region:           region,
		BaseEndpoint:     aws.String(srv.URL + "/bedrock/" + bedrockRegion),
		Credentials:      staticCredentials(testAccessKey, testSecret, "session-token"),
		HTTPClient:       &http.Client{Transport: memoryBodyTransport{srv.Client().Transport}},
		RetryMaxAttempts: 1,
	}, optFns...)
}

// withHeader makes the SDK add header k: v to its requests (before signing).
func withHeader(k, v string) func(*bedrockruntime.Options) {
	return func(o *bedrockruntime.Options) {
		o.APIOptions = append(o.APIOptions, smithyhttp.AddHeaderValue(k, v))
	}
}

// converseInput is a Converse request equivalent to invokeBody.
func converseInput(model string) *bedrockruntime.ConverseInput {
	return &bedrockruntime.ConverseInput{
		ModelId: aws.String(model),
		System:  []types.SystemContentBlock{&types.SystemContentBlockMemberText{Value: "You are kind"}},
		Messages: []types.Message{{
			Role:    types.ConversationRoleUser,
			Content: []types.ContentBlock{&types.ContentBlockMemberText{Value: "Hi!!"}},
		}},
	}
}

// apiErrorCode returns the AWS error code of err, failing the test when err
// is not an API error.
func apiErrorCode(t *testing.T, err error) string {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("want an API error, got %v", err)
	}
	return ae.ErrorCode()
}

func TestBedrockConverse(t *testing.T) {
	srv := newBedrockServer(t, knownCredentials())
	client := bedrockClient(srv, bedrockRegion)
	out, err := client.Converse(context.Background(), converseInput(bedrockModel))
	if err != nil {
		t.Fatalf("Converse: %v", err)
	}
	msg, ok := out.Output.(*types.ConverseOutputMemberMessage)
	if !ok || msg.Value.Role != types.ConversationRoleAssistant || len(msg.Value.Content) != 1 {
		t.Fatalf("unexpected output %#v", out.Output)
	}
	if text, ok := msg.Value.Content[0].(*types.ContentBlockMemberText); !ok || text.Value != loremIpsum {
		t.Fatalf("unexpected content %#v", msg.Value.Content[0])
	}
	if out.StopReason != types.StopReasonEndTurn {
		t.Fatalf("stop reason = %q", out.StopReason)
	}
	if u := out.Usage; *u.InputTokens != 4 || *u.OutputTokens != 19 || *u.TotalTokens != 23 {
		t.Fatalf("usage = %d/%d/%d, want 4/19/23", *u.InputTokens, *u.OutputTokens, *u.TotalTokens)
	}
	if out.Metrics == nil || out.Metrics.LatencyMs == nil {
		t.Fatal("missing metrics")
	}
	if id, _ := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata); !strings.HasPrefix(id, "req_") {
		t.Fatalf("request id = %q", id)
	}

	in := converseInput(bedrockModel)
	in.InferenceConfig = &types.InferenceConfiguration{MaxTokens: aws.Int32(5)}
	out, err = client.Converse(context.Background(), in)
	if err != nil {
		t.Fatalf("Converse with maxTokens: %v", err)
	}
	if out.StopReason != types.StopReasonMaxTokens || *out.Usage.OutputTokens != 5 {
		t.Fatalf("stop reason %q, %d output tokens; want max_tokens, 5", out.StopReason, *out.Usage.OutputTokens)
	}
}

func TestBedrockConverseStream(t *testing.T) {
	srv := newBedrockServer(t, knownCredentials())
	client := bedrockClient(srv, bedrockRegion, withHeader("x-fake-chunks", "3"), withHeader("x-fake-chunk-delay-ms", "300"))
	in := converseInput(bedrockModel)
	out, err := client.ConverseStream(context.Background(), &bedrockruntime.ConverseStreamInput{
		ModelId: in.ModelId, System: in.System, Messages: in.Messages,
	})
	if err != nil {
		t.Fatalf("ConverseStream: %v", err)
	}
	stream := out.GetStream()
	defer stream.Close()
	var names []string
	var text strings.Builder
	var deltaTimes []time.Time
	var stop types.StopReason
	var meta *types.ConverseStreamMetadataEvent
	for ev := range stream.Events() {
		switch v := ev.(type) {
		case *types.ConverseStreamOutputMemberMessageStart:
			names = append(names, "messageStart")
			if v.Value.Role != types.ConversationRoleAssistant {
				t.Fatalf("role = %q", v.Value.Role)
			}
		case *types.ConverseStreamOutputMemberContentBlockDelta:
			names = append(names, "contentBlockDelta")
			deltaTimes = append(deltaTimes, time.Now())
			d, ok := v.Value.Delta.(*types.ContentBlockDeltaMemberText)
			if !ok || *v.Value.ContentBlockIndex != 0 {
				t.Fatalf("unexpected delta %#v", v.Value)
			}
			text.WriteString(d.Value)
		case *types.ConverseStreamOutputMemberContentBlockStop:
			names = append(names, "contentBlockStop")
		case *types.ConverseStreamOutputMemberMessageStop:
			names = append(names, "messageStop")
			stop = v.Value.StopReason
		case *types.ConverseStreamOutputMemberMetadata:
			names = append(names, "metadata")
			meta = &v.Value
		default:
			t.Fatalf("unexpected event %#v", ev)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("stream after %v: %v", names, err)
	}
	want := []string{"messageStart", "contentBlockDelta", "contentBlockDelta", "contentBlockDelta", "contentBlockStop", "messageStop", "metadata"}
	if !slices.Equal(names, want) {
		t.Fatalf("events = %v, want %v", names, want)
	}
	if text.String() != expectedText(3) || stop != types.StopReasonEndTurn {
		t.Fatalf("text %q, stop %q", text.String(), stop)
	}
	if u := meta.Usage; *u.InputTokens != 4 || *u.OutputTokens != 19 || *u.TotalTokens != 23 || meta.Metrics.LatencyMs == nil {
		t.Fatalf("unexpected metadata %+v %+v", *u.InputTokens, meta.Metrics)
	}
	// Each delta is flushed when written: the first arrives a full chunk
	// delay before the second.
	if gap := deltaTimes[1].Sub(deltaTimes[0]); gap < 200*time.Millisecond {
		t.Fatalf("deltas 1 and 2 arrived %v apart: the stream is not flushed", gap)
	}
}

// testInvokeMessage is the decoded shape of an InvokeModel answer or a
// streamed Anthropic event on Bedrock.
type testInvokeMessage struct {
	Type    string `json:"type"`
	ID      string `json:"id"`
	Role    string `json:"role"`
	Model   string `json:"model"`
	Content []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	} `json:"content"`
	StopReason string `json:"stop_reason"`
	Usage      struct {
		InputTokens  int `json:"input_tokens"`
		OutputTokens int `json:"output_tokens"`
	} `json:"usage"`
}

func TestBedrockInvokeModel(t *testing.T) {
	srv := newBedrockServer(t, knownCredentials())
	client := bedrockClient(srv, bedrockRegion)
	// An inference profile ARN: the SDK escapes its '/' as %2F.
	model := "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-7-sonnet-20250219-v1:0"
	out, err := client.InvokeModel(context.Background(), &bedrockruntime.InvokeModelInput{
		ModelId:     aws.String(model),
		ContentType: aws.String("application/json"),
		Accept:      aws.String("application/json"),
		Body:        []byte(invokeBody),
	})
	if err != nil {
		t.Fatalf("InvokeModel: %v", err)
	}
	if *out.ContentType != "application/json" {
		t.Fatalf("content type = %q", *out.ContentType)
	}
	m := decode[testInvokeMessage](t, out.Body)
	if m.Type != "message" || m.Role != "assistant" || m.Model != model || !strings.HasPrefix(m.ID, "msg_bdrk_") {
		t.Fatalf("unexpected message %s", out.Body)
	}
	if len(m.Content) != 1 || m.Content[0].Type != "text" || m.Content[0].Text != loremIpsum || m.StopReason != "end_turn" {
		t.Fatalf("unexpected content %s", out.Body)
	}
	if m.Usage.InputTokens != 4 || m.Usage.OutputTokens != 19 || strings.Contains(string(out.Body), "service_tier") {
		t.Fatalf("unexpected usage %s", out.Body)
	}
	raw, ok := awsmiddleware.GetRawResponse(out.ResultMetadata).(*smithyhttp.Response)
	if !ok {
		t.Fatal("no raw response")
	}
	if in, o := raw.Header.Get("X-Amzn-Bedrock-Input-Token-Count"), raw.Header.Get("X-Amzn-Bedrock-Output-Token-Count"); in != "4" || o != "19" {
		t.Fatalf("token count headers = %q, %q", in, o)
	}
}

func TestBedrockInvokeModelWithResponseStream(t *testing.T) {
	srv := newBedrockServer(t, knownCredentials())
	client := bedrockClient(srv, bedrockRegion, withHeader("x-fake-chunks", "4"))
	out, err := client.InvokeModelWithResponseStream(context.Background(), &bedrockruntime.InvokeModelWithResponseStreamInput{
		ModelId:     aws.String(bedrockModel),
		ContentType: aws.String("application/json"),
		Body:        []byte(invokeBody),
	})
	if err != nil {
		t.Fatalf("InvokeModelWithResponseStream: %v", err)
	}
	stream := out.GetStream()
	defer stream.Close()
	type chunkEvent struct {
		testAnthropicEvent
		Metrics *struct {
			InputTokenCount   int   `json:"inputTokenCount"`
			OutputTokenCount  int   `json:"outputTokenCount"`
			InvocationLatency int64 `json:"invocationLatency"`
			FirstByteLatency  int64 `json:"firstByteLatency"`
		} `json:"amazon-bedrock-invocationMetrics"`
	}
	var events []chunkEvent
	for ev := range stream.Events() {
		chunk, ok := ev.(*types.ResponseStreamMemberChunk)
		if !ok {
			t.Fatalf("unexpected event %#v", ev)
		}
		events = append(events, decode[chunkEvent](t, chunk.Value.Bytes))
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("stream: %v", err)
	}
	var names []string
	var text strings.Builder
	for i, e := range events {
		names = append(names, e.Type)
		if e.Type == "content_block_delta" {
			text.WriteString(e.Delta.Text)
		}
		if (e.Metrics != nil) != (i == len(events)-1) {
			t.Fatalf("event %d (%s): invocation metrics %+v, want them on the last event only", i, e.Type, e.Metrics)
		}
	}
	want := []string{
		"message_start", "content_block_start",
		"content_block_delta", "content_block_delta", "content_block_delta", "content_block_delta",
		"content_block_stop", "message_delta", "message_stop",
	}
	if !slices.Equal(names, want) {
		t.Fatalf("events = %v, want %v", names, want)
	}
	if text.String() != expectedText(4) {
		t.Fatalf("text = %q", text.String())
	}
	if s := events[0].Message; s == nil || s.Usage.InputTokens != 4 || s.Usage.OutputTokens != 1 {
		t.Fatalf("unexpected message_start %+v", s)
	}
	if d := events[7]; d.Delta.StopReason != "end_turn" || d.Usage == nil || d.Usage.OutputTokens != 19 {
		t.Fatalf("unexpected message_delta %+v", d)
	}
	if m := events[len(events)-1].Metrics; m.InputTokenCount != 4 || m.OutputTokenCount != 19 || m.FirstByteLatency > m.InvocationLatency {
		t.Fatalf("unexpected invocation metrics %+v", m)
	}
}

func TestBedrockBearerToken(t *testing.T) {
	var mu sync.Mutex
	var auth, uri string
	h := fakeprovider.NewHandler(knownCredentials(), nil)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auth, uri = r.Header.Get("Authorization"), r.RequestURI
		mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)

	// The SDK prefers bearer auth when this variable is set.
	t.Setenv("AWS_BEARER_TOKEN_BEDROCK", "ABSK-fake-api-key")
	client := bedrockClient(srv, bedrockRegion, func(o *bedrockruntime.Options) {
		o.Credentials = staticCredentials("AKIDUNKNOWN", "wrong", "")
	})
	if _, err := client.Converse(context.Background(), converseInput(bedrockModel)); err != nil {
		t.Fatalf("Converse with an API key: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if auth != "Bearer ABSK-fake-api-key" {
		t.Fatalf("Authorization = %q, want the bearer token", auth)
	}
	if !strings.Contains(uri, "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse") {
		t.Fatalf("request URI %q: want the model id escaped by the SDK", uri)
	}
}

func TestBedrockSigV4Rejections(t *testing.T) {
	srv := newBedrockServer(t, knownCredentials())
	tests := []struct {
		name   string
		region string
		creds  aws.CredentialsProvider
		code   string
	}{
		{"wrong secret", bedrockRegion, staticCredentials(testAccessKey, "not-the-secret", ""), "InvalidSignatureException"},
		{"unknown access key", bedrockRegion, staticCredentials("AKIDUNKNOWN", testSecret, ""), "UnrecognizedClientException"},
		{"region mismatch", "eu-west-1", staticCredentials(testAccessKey, testSecret, ""), "InvalidSignatureException"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := bedrockClient(srv, tt.region, func(o *bedrockruntime.Options) { o.Credentials = tt.creds })
			_, err := client.Converse(context.Background(), converseInput(bedrockModel))
			if code := apiErrorCode(t, err); code != tt.code {
				t.Fatalf("error code = %q, want %q (%v)", code, tt.code, err)
			}
		})
	}

	// Without configured secrets any well-formed signature passes, but the
	// scope must still name the region of the path.
	open := newBedrockServer(t, fakeprovider.Config{})
	client := bedrockClient(open, bedrockRegion, func(o *bedrockruntime.Options) {
		o.Credentials = staticCredentials("AKIDANY", "any", "")
	})
	if _, err := client.Converse(context.Background(), converseInput(bedrockModel)); err != nil {
		t.Fatalf("Converse without configured secrets: %v", err)
	}
	client = bedrockClient(open, "us-west-2")
	if code := apiErrorCode(t, errOf(client.Converse(context.Background(), converseInput(bedrockModel)))); code != "InvalidSignatureException" {
		t.Fatalf("region mismatch without secrets: code %q", code)
	}
}

// errOf returns the error of a two-value call.
func errOf[T any](_ T, err error) error { return err }

func TestBedrockTypedErrors(t *testing.T) {
	srv := newBedrockServer(t, knownCredentials())
	ctx := context.Background()
	var throttled *types.ThrottlingException
	_, err := bedrockClient(srv, bedrockRegion, withHeader("x-fake-status", "429")).Converse(ctx, converseInput(bedrockModel))
	if !errors.As(err, &throttled) {
		t.Fatalf("x-fake-status 429: %v", err)
	}
	var unavailable *types.ServiceUnavailableException
	_, err = bedrockClient(srv, bedrockRegion, withHeader("x-fake-status", "503")).Converse(ctx, converseInput(bedrockModel))
	if !errors.As(err, &unavailable) {
		t.Fatalf("x-fake-status 503: %v", err)
	}
	var internal *types.InternalServerException
	_, err = bedrockClient(srv, bedrockRegion, withHeader("x-fake-status", "500")).Converse(ctx, converseInput(bedrockModel))
	if !errors.As(err, &internal) {
		t.Fatalf("x-fake-status 500: %v", err)
	}

	client := bedrockClient(srv, bedrockRegion)
	var invalid *types.ValidationException
	_, err = client.Converse(ctx, &bedrockruntime.ConverseInput{ModelId: aws.String(bedrockModel)})
	if !errors.As(err, &invalid) || !strings.Contains(*invalid.Message, "user message") {
		t.Fatalf("Converse without messages: %v", err)
	}
	_, err = client.InvokeModel(ctx, &bedrockruntime.InvokeModelInput{
		ModelId: aws.String(bedrockModel),
		Body:    []byte(`{"model":"claude","anthropic_version":"bedrock-2023-05-31","max_tokens":5,"messages":[]}`),
	})
	if !errors.As(err, &invalid) || !strings.Contains(*invalid.Message, "extraneous key [model]") {
		t.Fatalf("InvokeModel with a model key: %v", err)
	}
	_, err = client.InvokeModelWithResponseStream(ctx, &bedrockruntime.InvokeModelWithResponseStreamInput{
		ModelId: aws.String(bedrockModel),
		Body:    []byte(`{"anthropic_version":"bedrock-2023-05-31","messages":[]}`),
	})
	if !errors.As(err, &invalid) || !strings.Contains(*invalid.Message, "required key [max_tokens]") {
		t.Fatalf("InvokeModelWithResponseStream without max_tokens: %v", err)
	}
}

// loremIpsum is the fake provider's fixed completion (package fakeprovider).
const loremIpsum = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, " +
	"sed do eiusmod tempor incididunt ut labore et dolore magna aliqua."

// expectedText is the fake's completion for a stream of chunks pieces: the
// lorem sentence (19 words) whenever chunks is at most 19.
func expectedText(chunks int) string {
	if chunks > 19 {
		panic("expectedText: more chunks than the sentence has words")
	}
	return loremIpsum
}

// decode unmarshals a JSON body into a T.
func decode[T any](t *testing.T, body []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("unmarshal %T: %v; body: %s", v, err, body)
	}
	return v
}

// testAnthropicEvent is one Anthropic stream event (from the fake's tests).
type testAnthropicEvent struct {
	Type    string `json:"type"`
	Index   *int   `json:"index"`
	Message *struct {
		Model string `json:"model"`
		Usage struct {
			InputTokens  int `json:"input_tokens"`
			OutputTokens int `json:"output_tokens"`
		} `json:"usage"`
	} `json:"message"`
	Delta struct {
		Type       string `json:"type"`
		Text       string `json:"text"`
		StopReason string `json:"stop_reason"`
	} `json:"delta"`
	Usage *struct {
		OutputTokens int `json:"output_tokens"`
	} `json:"usage"`
}
