package fakeprovider

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"net/textproto"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// bedrockDialect authenticates with SigV4 or a Bedrock API key and answers
// errors the AWS restJson1 way.
func bedrockDialect(auth *bedrockAuth) *dialect {
	return &dialect{
		checkSigned:     auth.check,
		writeError:      writeBedrockError,
		requestIDHeader: "x-amzn-RequestId",
	}
}

// bedrockErrorBody is the body of an AWS restJson1 error.
type bedrockErrorBody struct {
	Message string `json:"message"`
}

// writeBedrockError renders {"message"} with the error type in the
// X-Amzn-Errortype header, which the AWS SDK maps to a typed error.
func writeBedrockError(w http.ResponseWriter, e apiError) {
	typ := e.code
	if typ == "" {
		typ = bedrockErrorType(e.status)
	}
	w.Header().Set("X-Amzn-Errortype", typ+":"+bedrockErrorNamespace(typ))
	writeJSON(w, e.status, bedrockErrorBody{Message: e.message})
}

// bedrockErrorType maps an HTTP status to a Bedrock Runtime exception name.
func bedrockErrorType(status int) string {
	switch status {
	case http.StatusForbidden:
		return "AccessDeniedException"
	case http.StatusNotFound:
		return "ResourceNotFoundException"
	case http.StatusRequestTimeout:
		return "ModelTimeoutException"
	case http.StatusConflict:
		return "ConflictException"
	case http.StatusFailedDependency:
		return "ModelErrorException"
	case http.StatusTooManyRequests:
		return "ThrottlingException"
	case http.StatusServiceUnavailable:
		return "ServiceUnavailableException"
	}
	if status >= 500 {
		return "InternalServerException"
	}
	return "ValidationException"
}

// Authentication error types, reported by the AWS front end rather than by
// Bedrock itself.
const (
	errIncompleteSignature = "IncompleteSignatureException"
	errInvalidSignature    = "InvalidSignatureException"
	errUnrecognizedClient  = "UnrecognizedClientException"
)

// bedrockErrorNamespace is the suffix AWS appends to X-Amzn-Errortype.
func bedrockErrorNamespace(typ string) string {
	switch typ {
	case errIncompleteSignature, errInvalidSignature, errUnrecognizedClient:
		return "http://internal.amazon.com/coral/com.amazon.coral.service/"
	}
	return "http://internal.amazon.com/coral/com.amazon.bedrock/"
}

// SigV4 constants.
const (
	sigV4Algorithm   = "AWS4-HMAC-SHA256"
	sigV4Terminator  = "aws4_request"
	sigV4TimeFormat  = "20060102T150405Z"
	bedrockService   = "bedrock"
	maxSigV4ClockGap = 5 * time.Minute
	signatureMessage = "The request signature we calculated does not match the signature you provided. " +
		"Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
)

// bedrockAuth authenticates Bedrock requests: AWS Signature Version 4, or a
// Bedrock API key sent as a bearer token.
type bedrockAuth struct {
	secrets map[string]string // access key id → secret; empty accepts any signature
	signer  *v4.Signer
}

// newBedrockAuth returns the authenticator for the configured secrets.
func newBedrockAuth(secrets map[string]string) *bedrockAuth {
	return &bedrockAuth{secrets: secrets, signer: v4.NewSigner()}
}

// authError returns a 403 of type typ.
func authError(typ, msg string) *apiError {
	return &apiError{status: http.StatusForbidden, code: typ, message: msg}
}

// check authenticates r, whose body has been read into body.
func (a *bedrockAuth) check(r *http.Request, body []byte) *apiError {
	h := r.Header.Get("Authorization")
	// net/http trims the header value, so an empty key arrives as "Bearer".
	if scheme, token, _ := strings.Cut(h, " "); scheme == "Bearer" {
		if strings.TrimSpace(token) == "" {
			return authError("AccessDeniedException", "Authentication failed: Please make sure your API Key is valid.")
		}
		return nil
	}
	if h == "" {
		return authError("AccessDeniedException", "Missing Authentication Token")
	}
	sig, e := parseSigV4(h, r.Header.Get("X-Amz-Date"))
	if e != nil {
		return e
	}
	if e := sig.checkScope(r.PathValue("region")); e != nil {
		return e
	}
	if len(a.secrets) == 0 {
		return nil
	}
	return a.verify(r, body, sig)
}

// sigV4 is a parsed SigV4 Authorization header.
type sigV4 struct {
	accessKeyID   string
	date          string // YYYYMMDD of the credential scope
	region        string
	service       string
	signedHeaders string // as sent: lower-case names joined by ';'
	signature     string
	amzDate       string // the X-Amz-Date header
	time          time.Time
}

// parseSigV4 parses an Authorization header and the X-Amz-Date header,
// answering IncompleteSignatureException when either is malformed.
func parseSigV4(h, amzDate string) (sigV4, *apiError) {
	incomplete := func(msg string) (sigV4, *apiError) {
		return sigV4{}, authError(errIncompleteSignature, msg)
	}
	rest, ok := strings.CutPrefix(h, sigV4Algorithm+" ")
	if !ok {
		return incomplete("Authorization header must use " + sigV4Algorithm + " or Bearer authentication.")
	}
	var sig sigV4
	var credential string
	for part := range strings.SplitSeq(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "Credential":
			credential = v
		case "SignedHeaders":
			sig.signedHeaders = v
		case "Signature":
			sig.signature = v
		}
	}
	for _, p := range []struct{ name, value string }{
		{"Credential", credential}, {"Signature", sig.signature}, {"SignedHeaders", sig.signedHeaders},
	} {
		if p.value == "" {
			return incomplete("Authorization header requires '" + p.name + "' parameter. Authorization=" + h)
		}
	}
	scope := strings.Split(credential, "/")
	if len(scope) != 5 {
		return incomplete("Credential must have exactly 5 slash-delimited elements, " +
			"e.g. keyid/date/region/service/term, got '" + credential + "'")
	}
	if scope[4] != sigV4Terminator {
		return incomplete("Credential should be scoped with a valid terminator: '" + sigV4Terminator + "', not '" + scope[4] + "'.")
	}
	sig.accessKeyID, sig.date, sig.region, sig.service = scope[0], scope[1], scope[2], scope[3]
	if amzDate == "" {
		return incomplete("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=" + h)
	}
	t, err := time.Parse(sigV4TimeFormat, amzDate)
	if err != nil {
		return incomplete("Date must be in ISO-8601 'basic format'. Got '" + amzDate + "'.")
	}
	sig.amzDate, sig.time = amzDate, t
	return sig, nil
}

// checkScope checks the credential scope against the request: the date of
// X-Amz-Date, the service and the region of the path. It also requires the
// host header to be signed.
func (sig sigV4) checkScope(region string) *apiError {
	invalid := func(msg string) *apiError { return authError(errInvalidSignature, msg) }
	switch {
	case sig.date != sig.amzDate[:8]:
		return invalid("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '" +
			sig.date + "' != '" + sig.amzDate[:8] + "', from '" + sig.amzDate + "'.")
	case sig.service != bedrockService:
		return invalid("Credential should be scoped to correct service: '" + bedrockService + "'. ")
	case sig.region != region:
		return invalid("Credential should be scoped to a valid region. ")
	case !slices.Contains(strings.Split(sig.signedHeaders, ";"), "host"):
		return invalid("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
	}
	return nil
}

// verify recomputes the signature of r with the secret of its access key and
// compares it with the one sent. The request is rebuilt with only the signed
// headers, then signed with the SDK's signer over the SHA-256 of the body,
// the credential scope and the X-Amz-Date time.
func (a *bedrockAuth) verify(r *http.Request, body []byte, sig sigV4) *apiError {
	secret, ok := a.secrets[sig.accessKeyID]
	if !ok {
		return authError(errUnrecognizedClient, "The security token included in the request is invalid.")
	}
	now := time.Now().UTC()
	switch {
	case sig.time.Before(now.Add(-maxSigV4ClockGap)):
		return authError(errInvalidSignature, "Signature expired: "+sig.amzDate+" is now earlier than "+
			now.Add(-maxSigV4ClockGap).Format(sigV4TimeFormat)+" ("+now.Format(sigV4TimeFormat)+" - 5 min.)")
	case sig.time.After(now.Add(maxSigV4ClockGap)):
		return authError(errInvalidSignature, "Signature not yet current: "+sig.amzDate+" is still later than "+
			now.Add(maxSigV4ClockGap).Format(sigV4TimeFormat)+" ("+now.Format(sigV4TimeFormat)+" + 5 min.)")
	}

	u := *r.URL
	u.Scheme, u.Host = "http", r.Host
	if r.TLS != nil {
		u.Scheme = "https" // the signer drops the scheme's default port from the host
	}
	req := &http.Request{Method: r.Method, URL: &u, Host: r.Host, Header: make(http.Header)}
	creds := aws.Credentials{AccessKeyID: sig.accessKeyID, SecretAccessKey: secret}
	for name := range strings.SplitSeq(sig.signedHeaders, ";") {
		switch name {
		case "host":
		case "content-length":
			req.ContentLength = int64(len(body))
		case "x-amz-security-token":
			creds.SessionToken = r.Header.Get("X-Amz-Security-Token")
		default:
			if v := r.Header.Values(name); len(v) > 0 {
				// A copy: the signer rewrites X-Amz-Date in place.
				req.Header[textproto.CanonicalMIMEHeaderKey(name)] = slices.Clone(v)
			}
		}
	}
	sum := sha256.Sum256(body)
	err := a.signer.SignHTTP(r.Context(), creds, req, hex.EncodeToString(sum[:]), sig.service, sig.region, sig.time)
	if err != nil {
		return authError(errInvalidSignature, signatureMessage+" ("+err.Error()+")")
	}
	want, e := parseSigV4(req.Header.Get("Authorization"), req.Header.Get("X-Amz-Date"))
	if e != nil {
		return e
	}
	if want.signedHeaders != sig.signedHeaders {
		// A signed header is missing from the request, or is one the SDK
		// signer never signs (user-agent, expect...).
		return authError(errInvalidSignature, signatureMessage+
			" (fake-provider: cannot reproduce SignedHeaders="+sig.signedHeaders+", got "+want.signedHeaders+")")
	}
	if subtle.ConstantTimeCompare([]byte(want.signature), []byte(sig.signature)) != 1 {
		return authError(errInvalidSignature, signatureMessage)
	}
	return nil
}
