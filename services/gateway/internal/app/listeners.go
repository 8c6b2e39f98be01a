package app

import (
	"net"

	"trueportai/services/internal/listenfd"
)

// Listeners are sockets the caller has already bound; a nil one is bound
// from GATEWAY_HTTP_ADDR / GATEWAY_GRPC_ADDR / GATEWAY_INTERNAL_ADDR. (Role
// ingester serves no gRPC and closes a GRPC listener it is given.)
type Listeners struct {
	HTTP net.Listener
	GRPC net.Listener
	// Internal serves /metrics and pprof, never the public.
	Internal net.Listener
}

// inheritedListeners returns the listeners the parent process handed down
// (LISTEN_FDS, named "http", "grpc" and "internal": package listenfd).
func inheritedListeners(getenv func(string) string) (Listeners, error) {
	ls, err := listenfd.Take(getenv, "the gateway", "http", "grpc", "internal")
	if err != nil {
		return Listeners{}, err
	}
	return Listeners{HTTP: ls["http"], GRPC: ls["grpc"], Internal: ls["internal"]}, nil
}

func closeListeners(ls Listeners) {
	for _, l := range []net.Listener{ls.HTTP, ls.GRPC, ls.Internal} {
		if l != nil {
			_ = l.Close()
		}
	}
}
