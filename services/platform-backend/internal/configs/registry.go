package configs

// The registry of tenant config keys: each known key has a type, a default,
// validation and a secret flag. The key list is the gateway's contract (it
// reads these keys from the tenant context, see grpcapi).

import (
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strings"
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
}

// Providers the gateway proxies, in a stable order.
func Providers() []string { return []string{"openai", "anthropic", "google", "azure"} }

// Defs returns every known key, sorted.
func Defs() []Def {
	var defs []Def
	for _, p := range Providers() {
		defs = append(defs,
			Def{Key: "providers." + p + ".api_key", Type: String, Secret: true, Description: "credential the gateway sends to " + p},
			Def{Key: "providers." + p + ".base_url", Type: URL, Description: "override of the " + p + " upstream base URL"},
		)
	}
	defs = append(defs,
		Def{Key: "gateway.default_rpm", Type: Int, Default: int64(60), Min: 1, Max: 100000, Description: "requests per minute for new API keys"},
		Def{Key: "gateway.allowed_models", Type: StringList, Default: []string{}, Description: "models any key may call (empty: all)"},
	)
	sort.Slice(defs, func(i, j int) bool { return defs[i].Key < defs[j].Key })
	return defs
}

// Lookup finds a key's definition.
func Lookup(key string) (Def, bool) {
	for _, d := range Defs() {
		if d.Key == key {
			return d, true
		}
	}
	return Def{}, false
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
		if d.Type == URL {
			u, err := url.Parse(s)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
				return "", fmt.Errorf("value must be an http(s) URL without credentials, query or fragment")
			}
			s = strings.TrimRight(u.String(), "/")
		}
		if d.Secret {
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
		}
		b, _ := json.Marshal(l)
		return string(b), nil
	}
	return "", fmt.Errorf("unsupported type %s", d.Type)
}
