package httpserver

import (
	"net/http"
	"net/http/pprof"
)

// InternalHandler serves what only operators may reach, on the internal
// listener (GATEWAY_INTERNAL_ADDR / PLATFORM_INTERNAL_ADDR), never on a
// public one: /metrics (Prometheus) and the runtime profiles under
// /debug/pprof/. Everything else is 404.
func InternalHandler(metrics http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics)
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
