package proxy

import (
	"errors"
	"net/url"
	"regexp"
	"strings"

	"trueportai/services/gateway/internal/config"
	"trueportai/services/gateway/internal/metering"
)

// Route prefixes of the proxy.
const (
	prefixOpenAI    = "/trueportai-services/openai/v1/"
	prefixAnthropic = "/trueportai-services/anthropic/v1/"
	prefixGoogle    = "/trueportai-services/google/v1beta/"
	prefixAzure     = "/trueportai-services/azure/"
)

// IsProxyPath reports whether path belongs to a proxy route.
func IsProxyPath(path string) bool {
	return strings.HasPrefix(path, prefixOpenAI) || strings.HasPrefix(path, prefixAnthropic) ||
		strings.HasPrefix(path, prefixGoogle) || strings.HasPrefix(path, prefixAzure)
}

var (
	azureResourceRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	azureDeploymentRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
)

// target is where a proxied request goes, derived only from the route (never
// from the body or headers).
type target struct {
	provider   metering.Provider
	rest       string // escaped path below the provider base, no leading slash
	resource   string // azure only
	deployment string // azure only
}

var errBadPath = errors.New("path is not allowed")

// parseTarget splits an escaped request path into provider and sub-path.
func parseTarget(escapedPath string) (target, error) {
	var t target
	var rest string
	switch {
	case strings.HasPrefix(escapedPath, prefixOpenAI):
		t.provider, rest = metering.OpenAI, escapedPath[len(prefixOpenAI):]
	case strings.HasPrefix(escapedPath, prefixAnthropic):
		t.provider, rest = metering.Anthropic, escapedPath[len(prefixAnthropic):]
	case strings.HasPrefix(escapedPath, prefixGoogle):
		t.provider, rest = metering.Google, escapedPath[len(prefixGoogle):]
	case strings.HasPrefix(escapedPath, prefixAzure):
		t.provider = metering.Azure
		parts := strings.SplitN(escapedPath[len(prefixAzure):], "/", 5)
		// {resource}/{deployment}/{path} or {resource}/openai/deployments/{deployment}/{path}
		switch {
		case len(parts) == 5 && parts[1] == "openai" && parts[2] == "deployments":
			t.resource, t.deployment, rest = parts[0], parts[3], parts[4]
		case len(parts) >= 3 && parts[1] != "openai":
			t.resource, t.deployment = parts[0], parts[1]
			rest = strings.Join(parts[2:], "/")
		default:
			return t, errBadPath
		}
		if !azureResourceRE.MatchString(t.resource) || !azureDeploymentRE.MatchString(t.deployment) || t.deployment == "." || t.deployment == ".." {
			return t, errBadPath
		}
	default:
		return t, errBadPath
	}
	if err := checkRest(rest); err != nil {
		return t, err
	}
	t.rest = rest
	return t, nil
}

// checkRest refuses anything that could leave the provider base once joined
// or decoded by the upstream: dot segments (plain or encoded), empty segments,
// encoded slashes/backslashes/percent signs, control characters.
func checkRest(rest string) error {
	if rest == "" || len(rest) > 2048 {
		return errBadPath
	}
	lower := strings.ToLower(rest)
	for _, bad := range []string{"%2e", "%2f", "%5c", "%25", "%00", "\\"} {
		if strings.Contains(lower, bad) {
			return errBadPath
		}
	}
	dec, err := url.PathUnescape(rest)
	if err != nil {
		return errBadPath
	}
	for _, seg := range strings.Split(dec, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return errBadPath
		}
	}
	for i := 0; i < len(dec); i++ {
		if dec[i] < 0x20 || dec[i] == 0x7f || dec[i] == '?' || dec[i] == '#' {
			return errBadPath
		}
	}
	return nil
}

// upstreamURL joins the provider base and the checked sub-path.
func upstreamURL(u config.Upstreams, t target, tenantBase, rawQuery string) (string, error) {
	var base string
	switch t.provider {
	case metering.OpenAI:
		base = u.OpenAI
	case metering.Anthropic:
		base = u.Anthropic
	case metering.Google:
		base = u.Google
	case metering.Azure:
		base = strings.NewReplacer("{resource}", t.resource, "{deployment}", t.deployment).Replace(u.AzureTemplate)
	}
	if tenantBase != "" && t.provider != metering.Azure {
		base = tenantBase
	}
	out := strings.TrimRight(base, "/") + "/" + t.rest
	if q := stripKeyParam(rawQuery); q != "" {
		out += "?" + q
	}
	pu, err := url.Parse(out)
	if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
		return "", errBadPath
	}
	return out, nil
}

// stripKeyParam removes the caller's ?key= (Gemini style) from a raw query,
// keeping every other parameter as sent.
func stripKeyParam(raw string) string {
	if raw == "" || !strings.Contains(raw, "key=") {
		return raw
	}
	parts := strings.Split(raw, "&")
	kept := parts[:0]
	for _, p := range parts {
		if name, _, _ := strings.Cut(p, "="); name == "key" {
			continue
		}
		kept = append(kept, p)
	}
	return strings.Join(kept, "&")
}
