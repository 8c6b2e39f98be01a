package configs

// The registry of tenant config keys: each known key has a type, a default,
// validation and a secret flag. The key list is the gateway's contract (it
// reads these keys from the tenant context, see grpcapi).

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"
)

// Type is a config value type.
type Type string

// Value types.
const (
	String     Type = "string"
	URL        Type = "url"
	Int        Type = "int"
	StringList Type = "string_list"
)

// Def describes one known key.
type Def struct {
	Key         string
	Type        Type
	Secret      bool
	Default     any
	Min, Max    int64
	Description string
	// Check, when set, validates a string value further.
	Check func(string) error
}

// Providers the gateway proxies, in a stable order. OpenAI-compatible
// upstreams ("compat") are named by the tenant: see CompatPrefix.
func Providers() []string { return []string{"openai", "anthropic", "google", "azure", "bedrock"} }

// CompatPrefix starts the keys of a tenant's OpenAI-compatible upstreams:
// providers.compat.{name}.base_url and providers.compat.{name}.api_key.
const CompatPrefix = "providers.compat."

var (
	compatNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	awsRegionRE  = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$`)
)

var (
	azureResourceRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	azureDeploymentRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
)

func checkAzureResource(s string) error {
	if !azureResourceRE.MatchString(s) {
		return fmt.Errorf("%q is not an Azure resource name", s)
	}
	return nil
}

func checkDeploymentMap(s string) error {
	dep, model, ok := strings.Cut(s, "=")
	if !ok || !azureDeploymentRE.MatchString(dep) || strings.TrimSpace(model) == "" {
		return fmt.Errorf("%q must be deployment=model", s)
	}
	return nil
}

func checkRegion(s string) error {
	if !awsRegionRE.MatchString(s) {
		return fmt.Errorf("value must be an AWS region such as us-east-1")
	}
	return nil
}

// Defs returns every fixed key, sorted (compat keys are matched by Lookup).
func Defs() []Def {
	var defs []Def
	for _, p := range Providers() {
		defs = append(defs,
			Def{Key: "providers." + p + ".api_key", Type: String, Secret: true, Description: "credential the gateway sends to " + p},
			Def{Key: "providers." + p + ".base_url", Type: URL, Description: "override of the " + p + " upstream base URL"},
		)
	}
	defs = append(defs,
		Def{Key: "providers.bedrock.region", Type: String, Check: checkRegion, Description: "AWS region of the Bedrock endpoint, e.g. us-east-1"},
		Def{Key: "providers.bedrock.access_key_id", Type: String, Secret: true, Description: "AWS access key id the gateway signs Bedrock requests with (SigV4)"},
		Def{Key: "providers.bedrock.secret_access_key", Type: String, Secret: true, Description: "AWS secret access key of that key id"},
		Def{Key: "providers.azure.resources", Type: StringList, Default: []string{}, Check: checkAzureResource,
			Description: "the Azure resources the gateway may send the key to (empty: any)"},
		Def{Key: "providers.azure.deployments", Type: StringList, Default: []string{}, Check: checkDeploymentMap,
			Description: "deployment=model pairs: the model each Azure deployment runs, for allowlists, pricing and usage (absent: the deployment's name)"},
	)
	defs = append(defs,
		Def{Key: "gateway.default_rpm", Type: Int, Default: int64(60), Min: 1, Max: 100000, Description: "requests per minute for new API keys"},
		Def{Key: "gateway.allowed_models", Type: StringList, Default: []string{}, Description: "models any key may call (empty: all)"},
	)
	sort.Slice(defs, func(i, j int) bool { return defs[i].Key < defs[j].Key })
	return defs
}

// Lookup finds a key's definition: a fixed key, or a key of an
// OpenAI-compatible upstream (providers.compat.{name}.base_url|api_key).
func Lookup(key string) (Def, bool) {
	for _, d := range Defs() {
		if d.Key == key {
			return d, true
		}
	}
	if rest, ok := strings.CutPrefix(key, CompatPrefix); ok {
		name, field, _ := strings.Cut(rest, ".")
		if !compatNameRE.MatchString(name) {
			return Def{}, false
		}
		switch field {
		case "base_url":
			return Def{Key: key, Type: URL, Description: "base URL of the OpenAI-compatible upstream " + name + " (where its /v1 API lives)"}, true
		case "api_key":
			return Def{Key: key, Type: String, Secret: true, Description: "credential the gateway sends to the OpenAI-compatible upstream " + name}, true
		}
	}
	return Def{}, false
}

// IsCompat reports whether key belongs to an OpenAI-compatible upstream.
func IsCompat(key string) bool {
	_, ok := Lookup(key)
	return ok && strings.HasPrefix(key, CompatPrefix)
}

// checkCredentialText refuses a secret (s, decoded from raw) holding a
// control byte (below 0x20, or 0x7f) or anything that is not valid UTF-8:
// invalid bytes in raw, or U+FFFD, which is what JSON decoding makes of them
// and of lone surrogate escapes. The error names key.
func checkCredentialText(key string, raw json.RawMessage, s string) error {
	bad := !utf8.Valid(raw) || strings.ContainsRune(s, utf8.RuneError)
	for i := 0; i < len(s) && !bad; i++ {
		bad = s[i] < 0x20 || s[i] == 0x7f
	}
	if bad {
		return fmt.Errorf("%s must not contain control characters (CR, LF, NUL, tab, DEL, ...) or invalid UTF-8", key)
	}
	return nil
}

// Normalize validates a raw JSON value against d and returns its canonical
// JSON form. For secrets it returns the plain string to be encrypted.
func (d Def) Normalize(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", fmt.Errorf("value is required")
	}
	switch d.Type {
	case String, URL:
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", fmt.Errorf("value must be a string")
		}
		s = strings.TrimSpace(s)
		if s == "" || len(s) > 4096 {
			return "", fmt.Errorf("value must be a non-empty string of at most 4096 characters")
		}
		if d.Check != nil {
			if err := d.Check(s); err != nil {
				return "", err
			}
		}
		if d.Type == URL {
			u, err := url.Parse(s)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
				return "", fmt.Errorf("value must be an http(s) URL without credentials, query or fragment")
			}
			s = strings.TrimRight(u.String(), "/")
		}
		if d.Secret {
			// A credential goes into an upstream header: CR/LF would split
			// it, NUL or other controls end or corrupt it.
			if err := checkCredentialText(d.Key, raw, s); err != nil {
				return "", err
			}
			return s, nil
		}
		b, _ := json.Marshal(s)
		return string(b), nil
	case Int:
		var n int64
		if err := json.Unmarshal(raw, &n); err != nil {
			return "", fmt.Errorf("value must be an integer")
		}
		if n < d.Min || n > d.Max {
			return "", fmt.Errorf("value must be between %d and %d", d.Min, d.Max)
		}
		return fmt.Sprint(n), nil
	case StringList:
		var l []string
		if err := json.Unmarshal(raw, &l); err != nil {
			return "", fmt.Errorf("value must be an array of strings")
		}
		if len(l) > 500 {
			return "", fmt.Errorf("value may hold at most 500 entries")
		}
		for i, s := range l {
			l[i] = strings.TrimSpace(s)
			if l[i] == "" || len(l[i]) > 200 {
				return "", fmt.Errorf("entry %d must be a non-empty string of at most 200 characters", i)
			}
			if d.Check != nil {
				if err := d.Check(l[i]); err != nil {
					return "", fmt.Errorf("entry %d: %w", i, err)
				}
			}
		}
		b, _ := json.Marshal(l)
		return string(b), nil
	}
	return "", fmt.Errorf("unsupported type %s", d.Type)
}
