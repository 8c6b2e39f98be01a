package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"trueportai/services/gateway/internal/fakeprovider"
)

// TestBedrockThroughGateway drives Bedrock Runtime through the gateway with
// the official AWS SDK for Go v2 (only the endpoint changed): Converse,
// ConverseStream, InvokeModel and InvokeModelWithResponseStream. The fake
// upstream verifies the gateway's SigV4 signature with the tenant's key
// pair, so a wrong region, body hash or credential fails the calls; the
// caller's TruePortAI key never reaches it; every call is metered with the
// tokens the SDK reported.
func TestBedrockThroughGateway(t *testing.T) {
	t.Parallel()
	const akid, secret = "AKIATENANTBEDROCK001", "tenant/bedrock+secret"
	var mu sync.Mutex
	var seen []http.Header
	fake := fakeprovider.NewHandler(fakeprovider.Config{Chunks: 4, AWSCredentials: map[string]string{akid: secret}}, nil)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Clone())
		mu.Unlock()
		fake.ServeHTTP(w, r)
	}))
	t.Cleanup(up.Close)
	s := newStack(t, "UPSTREAM_BEDROCK_URL_TEMPLATE="+up.URL+"/bedrock/{region}")
	ts := s.setupTenant("bedrock-" + randHex(3))
	for key, val := range map[string]string{
		"providers.bedrock.region":            "eu-west-3",
		"providers.bedrock.access_key_id":     akid,
		"providers.bedrock.secret_access_key": secret,
	} {
		if c := call(t, "PUT", s.platformURL+"/platform/api/service/configs/"+key, ts.scopedToken, map[string]string{"value": val}, nil); c != http.StatusOK {
			t.Fatalf("put %s: %d", key, c)
		}
	}
	// The SDK sends the TruePortAI key in x-api-key (over https it can also
	// send it as a Bedrock API key: AWS_BEARER_TOKEN_BEDROCK); no AWS
	// credentials on the client side.
	client := bedrockruntime.New(bedrockruntime.Options{
		Region:           "eu-west-3",
		BaseEndpoint:     aws.String(s.gatewayURL + "/trueportai-services/bedrock"),
		Credentials:      staticCredentials("AKIDCLIENTSIDE", "client-side-secret", ""), // signs for nothing: the gateway reads x-api-key
		HTTPClient:       &http.Client{Transport: memoryBodyTransport{http.DefaultTransport}},
		RetryMaxAttempts: 1,
	}, withHeader("X-Api-Key", ts.apiKey))
	ctx := context.Background()
	const model = "anthropic.claude-3-5-sonnet-20240620-v1:0"
	type want struct {
		path          string
		stream        bool
		prompt, compl int64
	}
	var wants []want

	// Converse (retried until the gateway has the tenant's new settings).
	var out *bedrockruntime.ConverseOutput
	// Each attempt spends one of the key's 60 RPM: poll once a second.
	eventuallyEvery(t, 30*time.Second, time.Second, func() error {
		var err error
		out, err = client.Converse(ctx, converseInput(model))
		return err
	})
	if out.Usage == nil || *out.Usage.OutputTokens == 0 {
		t.Fatalf("converse usage %+v", out.Usage)
	}
	wants = append(wants, want{"/model/" + model + "/converse", false, int64(*out.Usage.InputTokens), int64(*out.Usage.OutputTokens)})

	// ConverseStream: every event arrives, the metadata carries usage.
	in := converseInput(model)
	cs, err := client.ConverseStream(ctx, &bedrockruntime.ConverseStreamInput{ModelId: in.ModelId, System: in.System, Messages: in.Messages})
	if err != nil {
		t.Fatalf("ConverseStream: %v", err)
	}
	var text strings.Builder
	var meta *types.ConverseStreamMetadataEvent
	for ev := range cs.GetStream().Events() {
		switch v := ev.(type) {
		case *types.ConverseStreamOutputMemberContentBlockDelta:
			if d, ok := v.Value.Delta.(*types.ContentBlockDeltaMemberText); ok {
				text.WriteString(d.Value)
			}
		case *types.ConverseStreamOutputMemberMetadata:
			meta = &v.Value
		}
	}
	if err := cs.GetStream().Err(); err != nil || meta == nil || text.String() != loremIpsum {
		t.Fatalf("converse stream: err %v, metadata %v, text %q", err, meta, text.String())
	}
	cs.GetStream().Close()
	wants = append(wants, want{"/model/" + model + "/converse-stream", true, int64(*meta.Usage.InputTokens), int64(*meta.Usage.OutputTokens)})

	// InvokeModel, metered from the body (Claude format) or Bedrock's headers.
	inv, err := client.InvokeModel(ctx, &bedrockruntime.InvokeModelInput{ModelId: aws.String(model), ContentType: aws.String("application/json"), Body: []byte(invokeBody)})
	if err != nil {
		t.Fatalf("InvokeModel: %v", err)
	}
	var msg struct {
		Usage struct {
			InputTokens  int64 `json:"input_tokens"`
			OutputTokens int64 `json:"output_tokens"`
		} `json:"usage"`
	}
	if err := json.Unmarshal(inv.Body, &msg); err != nil || msg.Usage.OutputTokens == 0 {
		t.Fatalf("invoke body %s: %v", inv.Body, err)
	}
	wants = append(wants, want{"/model/" + model + "/invoke", false, msg.Usage.InputTokens, msg.Usage.OutputTokens})

	// InvokeModelWithResponseStream: the last chunk's invocation metrics.
	is, err := client.InvokeModelWithResponseStream(ctx, &bedrockruntime.InvokeModelWithResponseStreamInput{ModelId: aws.String(model), ContentType: aws.String("application/json"), Body: []byte(invokeBody)})
	if err != nil {
		t.Fatalf("InvokeModelWithResponseStream: %v", err)
	}
	var metrics struct {
		In  int64 `json:"inputTokenCount"`
		Out int64 `json:"outputTokenCount"`
	}
	for ev := range is.GetStream().Events() {
		if c, ok := ev.(*types.ResponseStreamMemberChunk); ok {
			var inner struct {
				M *json.RawMessage `json:"amazon-bedrock-invocationMetrics"`
			}
			if json.Unmarshal(c.Value.Bytes, &inner) == nil && inner.M != nil {
				_ = json.Unmarshal(*inner.M, &metrics)
			}
		}
	}
	if err := is.GetStream().Err(); err != nil || metrics.Out == 0 {
		t.Fatalf("invoke stream: %v, metrics %+v", err, metrics)
	}
	is.GetStream().Close()
	wants = append(wants, want{"/model/" + model + "/invoke-with-response-stream", true, metrics.In, metrics.Out})

	// What reached the upstream: the tenant's SigV4 signature, never the
	// caller's key.
	mu.Lock()
	for _, h := range seen {
		if !strings.HasPrefix(h.Get("Authorization"), "AWS4-HMAC-SHA256 Credential="+akid+"/") || !strings.Contains(h.Get("Authorization"), "/eu-west-3/bedrock/aws4_request") {
			t.Errorf("upstream Authorization %q", h.Get("Authorization"))
		}
		for name, vals := range h {
			for _, v := range vals {
				if strings.Contains(v, ts.apiKey) {
					t.Errorf("caller key leaked upstream in %s", name)
				}
			}
		}
	}
	mu.Unlock()

	// A model path the gateway refuses gets AWS's error shape, typed by the SDK.
	_, err = client.Converse(ctx, converseInput("../../admin"))
	var ve *types.ValidationException
	if !errors.As(err, &ve) {
		t.Fatalf("bad model id: %v", err)
	}

	eventually(t, 30*time.Second, func() error {
		var page logPage
		if c := call(t, "GET", s.gatewayURL+"/trueportai-services/api/v1/analytics/logs?limit=200&provider=bedrock", ts.scopedToken, nil, &page); c != 200 {
			return fmt.Errorf("logs status %d", c)
		}
		for _, w := range wants {
			found := false
			for _, r := range page.Items {
				if r.Path == w.path && r.StatusCode == 200 && r.Stream == w.stream {
					if r.Model != model || r.PromptTokens == nil || *r.PromptTokens != w.prompt || *r.CompletionTokens != w.compl {
						t.Fatalf("row %+v, want model %s tokens %d/%d", r, model, w.prompt, w.compl)
					}
					found = true
				}
			}
			if !found {
				return fmt.Errorf("no metered row for %s", w.path)
			}
		}
		return nil
	})
}
