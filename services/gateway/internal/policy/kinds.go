package policy

import (
	"slices"
	"strings"
)

// kind identifies what a detector found.
type kind uint8

const (
	// pii
	kEmail kind = iota
	kPhone
	kCreditCard
	kUSSSN
	kIBAN
	kIPv4
	// secrets
	kAWSAccessKey
	kAWSSecretKey
	kGCPAPIKey
	kPrivateKey
	kGitHubToken
	kGitLabToken
	kOpenAIKey
	kAnthropicKey
	kSlackToken
	kSlackWebhook
	kStripeKey
	kJWT
	kNPMToken
	// others
	kKeyword
	kRegex
	kInstructionOverride
	kRolePlay
	kExfiltration
	kDelimiter
	numKinds
)

var kindName = [numKinds]string{
	"email", "phone", "credit_card", "us_ssn", "iban", "ipv4",
	"aws_access_key", "aws_secret_key", "gcp_api_key", "private_key", "github_token", "gitlab_token",
	"openai_key", "anthropic_key", "slack_token", "slack_webhook", "stripe_key", "jwt", "npm_token",
	"keyword", "regex",
	"instruction_override", "role_play", "system_prompt_exfiltration", "delimiter_injection",
}

// kindLabel is the redaction replacement per kind: [REDACTED:<KIND>].
var kindLabel [numKinds]string

const (
	piiAll     uint32 = 1<<(kIPv4+1) - 1
	secretsAll uint32 = (1<<(kNPMToken+1) - 1) &^ piiAll
)

func init() {
	for k, n := range kindName {
		kindLabel[k] = "[REDACTED:" + strings.ToUpper(n) + "]"
	}
}

// PIIKinds and SecretKinds list the kinds accepted in rule configs.
func PIIKinds() []string    { return kindNames(kEmail, kIPv4) }
func SecretKinds() []string { return kindNames(kAWSAccessKey, kNPMToken) }

func kindNames(from, to kind) []string {
	return slices.Clone(kindName[from : to+1])
}

func kindList(from, to kind) string { return strings.Join(kindName[from:to+1], ", ") }

func kindByName(s string) (kind, bool) {
	for k := kEmail; k <= kNPMToken; k++ {
		if kindName[k] == s {
			return k, true
		}
	}
	return 0, false
}

func isPII(k kind) bool    { return k <= kIPv4 }
func isSecret(k kind) bool { return k >= kAWSAccessKey && k <= kNPMToken }

// hit is one detector match in the extracted text.
type hit struct {
	start, end int
	kind       kind
}

// sortHits orders by start, longer first (insertion sort: lists are short
// and usually already ordered).
func sortHits(h []hit) {
	if len(h) > 32 {
		slices.SortFunc(h, func(a, b hit) int {
			if hitLess(a, b) {
				return -1
			}
			if hitLess(b, a) {
				return 1
			}
			return 0
		})
		return
	}
	for i := 1; i < len(h); i++ {
		for j := i; j > 0 && hitLess(h[j], h[j-1]); j-- {
			h[j], h[j-1] = h[j-1], h[j]
		}
	}
}

func hitLess(a, b hit) bool {
	if a.start != b.start {
		return a.start < b.start
	}
	return a.end > b.end
}
