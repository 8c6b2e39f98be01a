package policy

import (
	"fmt"
	"strings"
	"testing"
)

func TestSecretsTruePositives(t *testing.T) {
	cases := []struct {
		k      kind
		secret string
		ctx    string // %s is replaced by the secret
	}{
		{kAWSAccessKey, fakeAWSKey, "aws_access_key_id = %s\n"},
		{kAWSSecretKey, fakeAWSSecret, "aws_secret_access_key = %s\n"},
		{kAWSSecretKey, fakeAWSSecret, `{"SecretAccessKey": "%s"}`},
		{kAWSSecretKey, fakeAWSSecret, "export AWS_SECRET_ACCESS_KEY=%s"},
		{kGCPAPIKey, fakeGCPKey, "key=%s&q=1"},
		{kPrivateKey, fakePrivateKey, "here is my key:\n%s\nthanks"},
		{kPrivateKey, strings.TrimSuffix(fakePrivateKey, "\n-----END RSA "+"PRIVATE KEY-----"), "truncated paste:\n%s"},
		{kPrivateKey, strings.ReplaceAll(fakePrivateKey, "RSA ", "OPENSSH "), "%s"},
		{kGitHubToken, fakeGitHubToken, "token: %s"},
		{kGitHubToken, join("gh", "s_", randStr(50, alphaB62, 36)), "%s"},
		{kGitHubToken, fakeGitHubPAT, "GH_TOKEN=%s"},
		{kGitLabToken, fakeGitLabToken, "PRIVATE-TOKEN: %s"},
		{kOpenAIKey, fakeOpenAIKey, `client = OpenAI(api_key="%s")`},
		{kOpenAIKey, fakeOpenAILegacy, "OPENAI_API_KEY=%s"},
		{kAnthropicKey, fakeAnthropicKey, "x-api-key: %s"},
		{kSlackToken, fakeSlackToken, "SLACK_BOT_TOKEN=%s"},
		{kSlackWebhook, fakeSlackHook, "post to %s now"},
		{kStripeKey, fakeStripeKey, "stripe.api_key = '%s'"},
		{kStripeKey, join("rk", "_live_", randStr(51, alphaB62, 32)), "%s"},
		{kOpenAIKey, join("sk", "-svcacct-", randStr(52, alphaB62+"_-", 64)), "%s"},
		{kJWT, fakeJWT, "Authorization: Bearer %s"},
		{kNPMToken, fakeNPMToken, "//registry.npmjs.org/:_authToken=%s"},
	}
	for _, c := range cases {
		text := fmt.Sprintf(c.ctx, c.secret)
		got := detect(c.k, text)
		if len(got) != 1 || got[0] != c.secret {
			t.Errorf("%s: got %q in %q", kindName[c.k], got, text)
		}
		// no other kind claims it
		for k := kAWSAccessKey; k <= kNPMToken; k++ {
			if k != c.k && len(detect(k, text)) > 0 {
				t.Errorf("%s text also matched %s", kindName[c.k], kindName[k])
			}
		}
		// the snippet never holds the secret
		sn := snippet(rtSecrets, c.k, []byte(c.secret))
		if strings.Contains(sn, c.secret[4:]) || len(sn) > 80 {
			t.Errorf("%s: snippet %q leaks", kindName[c.k], sn)
		}
	}
}

func TestSecretsFalsePositives(t *testing.T) {
	texts := []string{
		// documentation examples and placeholders
		"aws_access_key_id = AKIAIOSFODNN7EXAMPLE",
		"aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
		"AKIAAAAAAAAAAAAAAAAA and AKIAXXXXXXXXXXXXXXXX and AKIA1234567890ABCDEF",
		"OPENAI_API_KEY=sk-your-api-key-here",
		"sk-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
		"sk-...",
		"ghp_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		"ghp_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ",
		"xoxb-your-slack-bot-token-goes-here",
		"AIzaSyDUMMYKEYDUMMYKEYDUMMYKEYDUMMYKEYX",
		"-----BEGIN PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----",
		"-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA...\n-----END RSA PRIVATE KEY-----",
		// sk- in prose and code
		"we use sk-learn and the task-sk-thing; see risk-assessment-2024",
		"sk-this-is-not-a-real-key-it-is-just-a-long-sentence",
		`const key = "sk-" + process.env.OPENAI_KEY_SUFFIX_VALUE_FROM_ENV`,
		// public material and look-alikes
		"-----BEGIN PUBLIC KEY-----\n" + wrap(randStr(40, alphaB64, 300), 64) + "\n-----END PUBLIC KEY-----",
		"-----BEGIN CERTIFICATE-----\n" + wrap(randStr(41, alphaB64, 300), 64) + "\n-----END CERTIFICATE-----",
		"eyJfoo.eyJbarbazqux.sig", // header not base64 JSON with alg
		"git sha " + randStr(42, "0123456789abcdef", 40),
		randStr(43, alphaB64, 40) + " (40 chars of base64 with no key name)",
		"xAKIA" + randStr(44, alphaUpperDigits, 16), // glued
		"npm_" + randStr(45, alphaB62, 30),          // too short
	}
	for _, text := range texts {
		for k := kAWSAccessKey; k <= kNPMToken; k++ {
			if got := detect(k, text); len(got) > 0 {
				t.Errorf("%s matched %q in %q", kindName[k], got, text)
			}
		}
	}
}

// TestSecretsRecall checks that the randomness filters almost never reject
// real random keys.
func TestSecretsRecall(t *testing.T) {
	gens := []struct {
		k   kind
		gen func(i uint64) string
	}{
		{kAWSAccessKey, func(i uint64) string { return "AKIA" + randStrRaw(i, alphaUpperDigits, 16) }},
		{kGitHubToken, func(i uint64) string { return "ghp_" + randStrRaw(i, alphaB62, 36) }},
		{kOpenAIKey, func(i uint64) string { return "sk-" + randStrRaw(i, alphaB62, 48) }},
		{kGCPAPIKey, func(i uint64) string { return "AIza" + randStrRaw(i, alphaB62+"-_", 35) }},
	}
	for _, g := range gens {
		miss := 0
		const n = 5000
		for i := uint64(0); i < n; i++ {
			s := g.gen(1000 + i)
			if got := detect(g.k, "key "+s+" end"); len(got) != 1 {
				miss++
			}
		}
		if float64(miss)/n > 0.003 {
			t.Errorf("%s: %d/%d random keys missed", kindName[g.k], miss, n)
		}
	}
}
