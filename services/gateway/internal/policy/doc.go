// Package policy is the gateway's policy engine: a pure, allocation-light
// evaluator of tenant policy rules (docs/decisions.md, "Policies") over LLM request and
// response bodies. No I/O: the proxy compiles a tenant's rules into an
// immutable *Set (Compile) from its in-memory snapshot and calls
// Set.Evaluate on the hot path, concurrently.
//
// # Rules
//
// Validate checks a rule on write and returns a *FieldError naming the
// field ("name", "type", "action", "mode", "direction", "scope.providers",
// "config.pattern", "config.keywords", ...). Defaults: mode enforce,
// direction request, priority 0. Configs per type:
//
//	pii              {kinds?: [email, phone, credit_card, us_ssn, iban, ipv4]}  (empty = all)
//	secrets          {kinds?: [aws_access_key, aws_secret_key, gcp_api_key, private_key,
//	                  github_token, gitlab_token, openai_key, anthropic_key, slack_token,
//	                  slack_webhook, stripe_key, jwt, npm_token]}                (empty = all)
//	prompt_injection {threshold?: (0,1], default 0.5}
//	keyword          {keywords: [...], case_sensitive?: false, whole_word?: false}
//	regex            {pattern: RE2, at most 1000 characters, must not match ""}
//	model_allowlist  {models: [...]}   globs: '*' any run, '?' one character
//	max_tokens       {max_output_tokens?, max_prompt_chars?}  (at least one)
//
// model_allowlist and max_tokens look at requests only: action redact and
// direction response are rejected for them (direction both is accepted and
// acts as request).
//
// # Evaluation
//
// Rules run in priority order (higher first; equal priorities keep the
// order given to Compile), filtered by direction and scope. Scope lists are
// ANDed across dimensions, ORed within one; an empty list matches all; an
// empty input value (env, key id, model) never matches a non-empty list.
// Scope models are globs like the allowlist. The model is Input.Model, else
// the body's top-level "model"; both are lower-cased and a "models/" prefix
// (Gemini) is dropped before matching. An unknown model fails the allowlist
// (fail closed).
//
// Every applicable rule is evaluated and every match becomes a Violation
// (including flags and shadow-mode rules, marked Shadow with the action
// they would have taken). If any enforce-mode block matched, Result.Blocked
// is set and the body is left alone; otherwise the matches of enforce-mode
// redact rules are replaced by "[REDACTED:<KIND>]" (EMAIL, CREDIT_CARD,
// AWS_ACCESS_KEY, ...; KEYWORD, REGEX, PROMPT_INJECTION for those types)
// inside the JSON strings they came from. Overlapping matches merge into
// one replacement labelled by the highest-priority rule involved. The
// proxy forwards Result.Body, so what was checked is what is sent.
// Streamed responses are enforced on a sliding window of their text
// (stream.go: StreamHold bounds the matches of the rules in force,
// ScanText finds them in plain text, Input.Raw); the whole text is
// evaluated once at the end for the record.
//
// # Text extraction
//
// One strict scanner pass (it accepts exactly what encoding/json accepts)
// decodes only the strings on the provider's text paths:
//
//	OpenAI/Azure request  messages[].content (string or parts[].text, tool messages
//	                      included), prompt (string or array), input (string, array
//	                      of strings, or Responses items: content / content[].text /
//	                      function_call_output output), instructions
//	Anthropic request     system (string or blocks), messages[].content (string or
//	                      blocks, tool_result content string or blocks, document
//	                      blocks with inline text content)
//	Gemini request        contents[].parts[].text, every string inside
//	                      contents[].parts[].functionResponse.response (tool
//	                      results), systemInstruction (or
//	                      system_instruction).parts[].text, embed content(s)
//	responses             OpenAI choices[].message.content, choices[].text,
//	                      output[].content[].text; Anthropic content[].text;
//	                      Gemini candidates[].content.parts[].text (also inside a
//	                      top-level array)
//
// An empty or unknown provider uses the union of the paths. Other fields
// (tool-call arguments, image data, metadata, "user") are neither scanned
// nor changed. The extracted strings are joined with "\n"; Match.Offset is
// a byte offset into that text. A body that is not valid JSON is scanned
// whole as text, and redacted in place.
//
// Redaction splices re-encoded string literals into the original bytes:
// every byte outside a changed string (numbers, key order, whitespace,
// unknown fields) is preserved exactly.
//
// # Detectors and false-positive decisions
//
// All detectors are hand-written scanners; regexp is used only for regex
// rules. Literal-anchored detectors (all keyword rules of a set, the
// prompt-injection anchors, the secret prefixes) share one case-folded
// Aho-Corasick pass; the numeric PII kinds share one digit-run pass.
//
//   - email: local@domain.tld, TLD alphabetic 2+. Not an email: anything in
//     a URL token ("https://x.com/a@b.com", "https://user@host.com"), scp git
//     remotes (git@github.com:org/repo), retina file names (icon@2x.png),
//     pkg@1.2.3, user@localhost. mailto:a@b.com is an email.
//   - phone: "+" international numbers (8-15 digits) and NANP shapes
//     (NXX) NXX-XXXX, NXX-NXX-XXXX, NXX.NXX.XXXX; space-separated NANP only
//     after "phone"/"tel"/"call"/"mobile"/"cell"/"fax". Bare digit runs,
//     dates and version numbers are not phones.
//   - credit_card: 13-19 digits (contiguous, or groups of 3+ with one
//     consistent space/hyphen), Luhn-valid, with a known issuer prefix and
//     length. Prices, decimals, timestamps and numbers glued to letters or
//     other digit groups are skipped.
//   - us_ssn: AAA-GG-SSSS with valid area/group/serial; space-separated or
//     bare 9 digits only after "ssn"/"social security".
//   - iban: upper-case, compact or in groups of four, registered length for
//     the country, mod-97 valid.
//   - ipv4: dotted quads without leading zeros, not part of a longer dotted
//     number, not after "version"; loopback, 0.0.0.0 and 255.255.255.255 are
//     skipped (they identify nobody), private ranges are kept.
//   - secrets: distinctive prefixes verified by charset, length and
//     boundaries; random-bodied tokens must also look random (no placeholder
//     word like EXAMPLE/your/xxxx/test, not sequential, minimum Shannon
//     entropy, and for sk- keys a mix of digits, upper and lower case). So
//     AKIAIOSFODNN7EXAMPLE, "sk-your-key-here", "sk-learn" and prose with
//     "task-" are not secrets. PEM blocks need "PRIVATE KEY" in the label and
//     40+ base64 characters (public keys, certificates and "..." templates
//     are not secrets). JWTs need a base64url JSON header with "alg". AWS
//     secret keys need their key name just before. TruePortAI's own keys
//     (sk- + 40 base62) are reported as openai_key.
//   - prompt_injection: weighted heuristics (instruction override, role-play
//     jailbreaks, system-prompt exfiltration, chat-template delimiter
//     injection), combined as a noisy-OR score in [0,1]; see injection.go.
//     Tenant-authored system text is not scored.
//   - keyword: ASCII case folding; non-ASCII keywords also match their
//     lower- and upper-case spellings. whole_word uses Unicode letters and
//     digits, and only on the keyword's word-character edges.
//
// # Severity and snippets
//
// Severity: secrets high (private_key critical); pii medium (credit_card,
// us_ssn, iban high; ipv4 low; the highest match wins); prompt_injection
// medium, high from score 0.8; keyword, regex, model_allowlist medium;
// max_tokens low. Snippets are masked and never hold a secret or a full
// personal datum (see snippet in mask.go); at most MaxMatchesPerViolation
// matches are recorded per violation (redaction still covers all).
package policy
