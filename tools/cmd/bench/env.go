package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// envOr is ${name:-def}: the variable, or def when it is unset or empty.
func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// envSet is ${name-def}: the variable even when empty, def when unset.
func envSet(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

func envInt(name string, def int) (int, error) {
	v := envOr(name, strconv.Itoa(def))
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("%s=%q: not an integer", name, v)
	}
	return n, nil
}

func envFloat(name string, def float64) (float64, error) {
	v := envOr(name, strconv.FormatFloat(def, 'f', -1, 64))
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return 0, fmt.Errorf("%s=%q: not a number", name, v)
	}
	return f, nil
}

func envDuration(name, def string) (time.Duration, error) {
	v := envOr(name, def)
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%s=%q: not a duration (e.g. 7s)", name, v)
	}
	return d, nil
}

// overrides lists the set variables with one of the prefixes, sorted, as
// "NAME=value" words: what a report's command line mentions.
func overrides(prefixes ...string) string {
	var out []string
	for _, kv := range os.Environ() {
		for _, p := range prefixes {
			if strings.HasPrefix(kv, p) {
				out = append(out, kv)
				break
			}
		}
	}
	sortStrings(out)
	return strings.Join(out, " ")
}
