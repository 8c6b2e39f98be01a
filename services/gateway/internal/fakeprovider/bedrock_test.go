package fakeprovider

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
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
func knownCredentials() Config {
	return Config{AWSCredentials: map[string]string{testAccessKey: testSecret}}
}

// newBedrockServer starts the fake provider over TLS: the SDK sends bearer
// tokens over HTTPS only.
func newBedrockServer(t *testing.T, cfg Config) *httptest.Server {
	t.Helper()
	srv := httptest.NewTLSServer(NewHandler(cfg, nil))
	t.Cleanup(srv.Close)
	return srv
}

// bearer returns a Bedrock API key header.
func bearer() map[string]string { return hdr("Authorization", "Bearer ABSK-test") }

func TestBedrockErrorShape(t *testing.T) {
	srv := newTestServer(t, knownCredentials())
	const path = "/bedrock/us-east-1/model/" + bedrockModel + "/converse"
	body := `{"messages":[{"role":"user","content":[{"text":"hi"}]}]}`
	tests := []struct {
		name    string
		path    string
		headers map[string]string
		status  int
		typ     string
	}{
		{"missing auth", path, nil, http.StatusForbidden, "AccessDeniedException"},
		{"empty API key", path, hdr("Authorization", "Bearer "), http.StatusForbidden, "AccessDeniedException"},
		{"basic auth", path, hdr("Authorization", "Basic dTpw"), http.StatusForbidden, errIncompleteSignature},
		{"no date", path, hdr("Authorization", sigV4Algorithm+" Credential="+testAccessKey+
			"/20250101/us-east-1/bedrock/aws4_request, SignedHeaders=host, Signature=00"), http.StatusForbidden, errIncompleteSignature},
		{"injected 429", path, hdr(headerStatus, "429"), http.StatusTooManyRequests, "ThrottlingException"},
		{"unknown operation", "/bedrock/us-east-1/model/m/explain", bearer(), http.StatusNotFound, "ResourceNotFoundException"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			headers := []map[string]string{tt.headers}
			if tt.name == "injected 429" {
				headers = append(headers, bearer())
			}
			resp, b := do(t, srv, request{path: tt.path, body: body, headers: headers})
			wantStatus(t, resp, b, tt.status)
			wantHeader(t, resp, "X-Amzn-Errortype", tt.typ+":http://internal.amazon.com/coral/")
			wantHeader(t, resp, "Content-Type", "application/json")
			if e := decode[bedrockErrorBody](t, b); e.Message == "" {
				t.Fatalf("unexpected body %s", b)
			}
		})
	}
	resp, b := do(t, srv, request{path: path, body: body, headers: []map[string]string{bearer()}})
	wantStatus(t, resp, b, http.StatusOK)
	wantHeader(t, resp, "X-Amzn-Requestid", "req_")
}

func TestBedrockSignatureCoversBodyAndTime(t *testing.T) {
	signer := v4.NewSigner()
	srv := newTestServer(t, knownCredentials())
	const path = "/bedrock/us-east-1/model/m/invoke"
	send := func(t *testing.T, signed, sent string, at time.Time) (*http.Response, []byte) {
		t.Helper()
		req := httptest.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(sent))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(headerChunks, "2")
		sum := sha256Hex(signed)
		creds := aws.Credentials{AccessKeyID: testAccessKey, SecretAccessKey: testSecret}
		if err := signer.SignHTTP(context.Background(), creds, req, sum, "bedrock", bedrockRegion, at); err != nil {
			t.Fatal(err)
		}
		return do(t, srv, request{path: path, body: sent, headers: []map[string]string{
			hdr("Authorization", req.Header.Get("Authorization")),
			hdr("X-Amz-Date", req.Header.Get("X-Amz-Date")),
			hdr(headerChunks, "2"),
		}})
	}
	resp, b := send(t, invokeBody, invokeBody, time.Now())
	wantStatus(t, resp, b, http.StatusOK)
	if m := decode[testInvokeMessage](t, b); m.Content[0].Text != expectedText(2) {
		t.Fatalf("unexpected answer %s", b)
	}
	resp, b = send(t, invokeBody, strings.Replace(invokeBody, "Hi!!", "Ho!!", 1), time.Now())
	wantStatus(t, resp, b, http.StatusForbidden)
	wantHeader(t, resp, "X-Amzn-Errortype", errInvalidSignature)
	resp, b = send(t, invokeBody, invokeBody, time.Now().Add(-10*time.Minute))
	wantStatus(t, resp, b, http.StatusForbidden)
	if e := decode[bedrockErrorBody](t, b); !strings.HasPrefix(e.Message, "Signature expired") {
		t.Fatalf("unexpected body %s", b)
	}
}

// sha256Hex returns the hex SHA-256 of s.
func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestBedrockCancelEndsSlowStream(t *testing.T) {
	for _, op := range []string{"converse-stream", "invoke-with-response-stream"} {
		t.Run(op, func(t *testing.T) {
			srv, done := trackedServer(t, Config{Chunks: 100, ChunkDelay: 10 * time.Second})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			body := `{"messages":[{"role":"user","content":[{"text":"hi"}]}]}`
			if op == "invoke-with-response-stream" {
				body = invokeBody
			}
			resp := open(t, ctx, srv, request{path: "/bedrock/us-east-1/model/m/" + op, body: body, headers: []map[string]string{bearer()}})
			defer resp.Body.Close()
			wantHeader(t, resp, "Content-Type", contentTypeEventStream)
			prelude := make([]byte, 12)
			if _, err := resp.Body.Read(prelude); err != nil {
				t.Fatalf("reading the first message: %v", err)
			}
			cancel()
			waitDone(t, done, 2*time.Second)
		})
	}
}

// testInvokeMessage is an InvokeModel answer in the Claude format.
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
