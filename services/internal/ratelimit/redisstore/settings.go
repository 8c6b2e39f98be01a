package redisstore

import (
	"fmt"
	"log/slog"
	"strconv"

	"github.com/redis/go-redis/v9"

	"trueportai/services/internal/ratelimit"
)

// Settings are the shared-limits part of both services' configuration.
type Settings struct {
	// URL is REDIS_URL: the store of limits shared by replicas; empty keeps
	// every limit in this process's memory (one replica, dev).
	URL string
	// FallbackReplicas is LIMITS_REPLICAS_FALLBACK: the replica count
	// limits are divided by while the store is unreachable, when the
	// store's heartbeats never reported more (default 1).
	FallbackReplicas int
}

// ParseSettings reads REDIS_URL and LIMITS_REPLICAS_FALLBACK through get
// (which applies defaults and trims).
func ParseSettings(get func(key, def string) string) (Settings, error) {
	s := Settings{URL: get("REDIS_URL", "")}
	n, err := strconv.Atoi(get("LIMITS_REPLICAS_FALLBACK", "1"))
	if err != nil || n < 1 || n > 10000 {
		return s, fmt.Errorf("LIMITS_REPLICAS_FALLBACK must be an integer from 1 to 10000")
	}
	s.FallbackReplicas = n
	if s.URL != "" {
		if _, err := redis.ParseURL(s.URL); err != nil {
			return s, fmt.Errorf("REDIS_URL: %w", err)
		}
	}
	return s, nil
}

// Enabled reports whether limits are shared.
func (s Settings) Enabled() bool { return s.URL != "" }

// Build returns the shared limiter of group (keys under prefix) and its
// store; close the client when done. Call only when Enabled.
func (s Settings) Build(group, prefix string, log *slog.Logger) (*ratelimit.Shared, *Store, *redis.Client, error) {
	c, err := Open(s.URL)
	if err != nil {
		return nil, nil, nil, err
	}
	st := New(c, prefix)
	lim := ratelimit.NewShared(st, ratelimit.SharedOptions{Group: group, FallbackReplicas: s.FallbackReplicas, Log: log})
	return lim, st, c, nil
}
