// Package bedrock is Amazon Bedrock Runtime: Converse and ConverseStream,
// InvokeModel and InvokeModelWithResponseStream (and CountTokens), at
// /trueportai-services/bedrock/model/{modelId}/{operation}. Requests are
// signed with the tenant's AWS credentials (SigV4, the AWS SDK for Go v2
// signer) or carry the tenant's Bedrock API key; streams use AWS's binary
// event-stream framing.
package bedrock

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"trueportai/services/gateway/internal/provider"
	"trueportai/services/gateway/internal/textpath"
)

// EnvTemplate names the operator's endpoint template variable.
const EnvTemplate = "UPSTREAM_BEDROCK_URL_TEMPLATE"

// DefaultTemplate is the public Bedrock Runtime endpoint.
const DefaultTemplate = "https://bedrock-runtime.{region}.amazonaws.com"

// signingName is Bedrock's SigV4 service name.
const signingName = "bedrock"

var (
	regionRE = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$`)
	// Model ids, inference profile ids and ARNs.
	modelRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/-]*$`)
	// operations maps the path's operation to whether it streams.
	operations = map[string]bool{
		"converse": false, "converse-stream": true,
		"invoke": false, "invoke-with-response-stream": true,
		"count-tokens": false,
	}
)

// Provider is Amazon Bedrock Runtime.
type Provider struct {
	provider.Paths
	provider.AsIs
	template string
	signer   *v4.Signer
	now      func() time.Time
}

// New returns the provider for an endpoint template with a {region}
// placeholder.
func New(template string) (*Provider, error) {
	template = strings.TrimRight(template, "/")
	if !strings.Contains(template, "{region}") {
		return nil, fmt.Errorf("%s must contain {region}, got %q", EnvTemplate, template)
	}
	if _, err := provider.JoinURL(strings.ReplaceAll(template, "{region}", "us-east-1"), "x", ""); err != nil {
		return nil, fmt.Errorf("%s must be an absolute http(s) URL template, got %q", EnvTemplate, template)
	}
	return &Provider{Paths: provider.Paths{Request: requestPaths, Response: responsePaths},
		template: template, signer: v4.NewSigner(), now: time.Now}, nil
}

// FromEnv reads UPSTREAM_BEDROCK_URL_TEMPLATE.
func FromEnv(getenv func(string) string) (provider.Provider, error) {
	t := strings.TrimSpace(getenv(EnvTemplate))
	if t == "" {
		t = DefaultTemplate
	}
	return New(t)
}

// Name implements provider.Provider.
func (*Provider) Name() string { return "bedrock" }

// Prefix implements provider.Provider.
func (*Provider) Prefix() string { return provider.RoutePrefix + "bedrock/" }

// Route accepts model/{modelId}/{operation}. The model id may arrive
// escaped (the SDKs send ':' as %3A and an ARN's '/' as %2F) or not; it is
// decoded, checked and re-escaped canonically for the upstream path.
func (p *Provider) Route(rest string) (provider.Target, error) {
	var t provider.Target
	after, ok := strings.CutPrefix(rest, "model/")
	slash := strings.LastIndexByte(after, '/')
	if !ok || slash <= 0 || len(rest) > 2300 {
		return t, provider.ErrBadPath
	}
	op := after[slash+1:]
	stream, known := operations[op]
	if !known {
		return t, provider.ErrBadPath
	}
	model, err := url.PathUnescape(after[:slash])
	if err != nil || len(model) > 2048 || !modelRE.MatchString(model) {
		return t, provider.ErrBadPath
	}
	for seg := range strings.SplitSeq(model, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return t, provider.ErrBadPath
		}
	}
	t.Rest = "model/" + url.PathEscape(model) + "/" + op
	t.Path, t.Credential, t.Model, t.Stream = "/"+t.Rest, p.Name(), model, stream
	return t, nil
}

// MissingCredential requires a region and either AWS access keys or a
// Bedrock API key.
func (*Provider) MissingCredential(_ *provider.Target, c provider.Credential) string {
	switch {
	case c.Region == "":
		return "providers.bedrock.region"
	case c.AccessKeyID == "" && c.APIKey == "":
		return "providers.bedrock.access_key_id (or providers.bedrock.api_key)"
	case c.AccessKeyID != "" && c.SecretAccessKey == "":
		return "providers.bedrock.secret_access_key"
	}
	return ""
}

// Inspect returns what the path says: the model id and streaming.
func (*Provider) Inspect(t *provider.Target, _ provider.Credential, _ []byte) provider.Request {
	return provider.Request{Model: t.Model, Stream: t.Stream}
}

// ModelFree: every Bedrock Runtime operation runs a model.
func (*Provider) ModelFree(*provider.Target, string) bool { return false }

var (
	requestPaths = textpath.Compile([]textpath.Spec{
		// Converse
		{Path: "messages[]", Flags: textpath.Msg},
		{Path: "messages[].role", Flags: textpath.Role},
		{Path: "messages[].content[].text", Flags: textpath.Text},
		{Path: "messages[].content[].toolResult.content[].text", Flags: textpath.Text},
		{Path: "system[].text", Flags: textpath.Text | textpath.System},
		{Path: "inferenceConfig.maxTokens", Flags: textpath.MaxOut},
		// InvokeModel bodies in the model's own format: Anthropic
		// (messages, system, tool_result content), Llama/Mistral (prompt),
		// Titan (inputText).
		{Path: "messages[].content", Flags: textpath.Text},
		{Path: "messages[].content[].content", Flags: textpath.Text},
		{Path: "messages[].content[].content[].text", Flags: textpath.Text},
		{Path: "system", Flags: textpath.Text | textpath.System},
		{Path: "max_tokens", Flags: textpath.MaxOut},
		{Path: "prompt", Flags: textpath.Text},
		{Path: "max_gen_len", Flags: textpath.MaxOut},
		{Path: "inputText", Flags: textpath.Text},
		{Path: "textGenerationConfig.maxTokenCount", Flags: textpath.MaxOut},
	})
	responsePaths = textpath.Compile([]textpath.Spec{
		{Path: "output.message.content[].text", Flags: textpath.Text}, // Converse
		{Path: "content[].text", Flags: textpath.Text},                // Anthropic
		{Path: "generation", Flags: textpath.Text},                    // Llama
		{Path: "outputs[].text", Flags: textpath.Text},                // Mistral
		{Path: "results[].outputText", Flags: textpath.Text},          // Titan
	})
	headers = provider.NewHeaderSet(provider.CommonHeaders, []string{"X-Amzn-Bedrock-*"})
)

// URL fills the operator's template with the tenant's region (a tenant base
// URL, e.g. a VPC endpoint, replaces it).
func (p *Provider) URL(t *provider.Target, c provider.Credential, rawQuery string) (string, bool, error) {
	if !regionRE.MatchString(c.Region) {
		return "", false, provider.ErrBadPath
	}
	base := c.BaseURL
	if base == "" {
		base = strings.ReplaceAll(p.template, "{region}", c.Region)
	}
	dest, err := provider.JoinURL(base, t.Rest, rawQuery)
	return dest, c.BaseURL != "", err
}

// ForwardHeader allows the common headers and X-Amzn-Bedrock-* (trace,
// guardrail, performance settings); the client's own SigV4 headers never
// pass.
func (*Provider) ForwardHeader(name string) bool { return headers.Allows(name) }

// Authorize signs the request with the tenant's AWS credentials (SigV4 over
// the exact body), or sends its Bedrock API key as a bearer token.
func (p *Provider) Authorize(r *http.Request, c provider.Credential, body []byte) error {
	if c.AccessKeyID == "" {
		r.Header.Set("Authorization", "Bearer "+c.APIKey)
		return nil
	}
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken}
	return p.signer.SignHTTP(r.Context(), creds, r, hex.EncodeToString(sum[:]), signingName, c.Region, p.now())
}

type errorBody struct {
	Type    string `json:"__type"`
	Message string `json:"message"`
}

// ErrorBody is AWS's JSON error: {"__type","message"}, which the AWS SDKs
// turn into their typed exceptions.
func (*Provider) ErrorBody(status int, _ string, message string) []byte {
	b, _ := json.Marshal(errorBody{Type: errorType(status), Message: message})
	return b
}

func errorType(status int) string {
	switch status {
	case http.StatusUnauthorized, http.StatusForbidden:
		return "AccessDeniedException"
	case http.StatusNotFound:
		return "ResourceNotFoundException"
	case http.StatusTooManyRequests:
		return "ThrottlingException"
	case http.StatusServiceUnavailable:
		return "ServiceUnavailableException"
	case http.StatusBadGateway, http.StatusGatewayTimeout, http.StatusInternalServerError:
		return "InternalServerException"
	default:
		return "ValidationException"
	}
}
