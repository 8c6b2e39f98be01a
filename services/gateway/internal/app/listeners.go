package app

import (
	"errors"
	"fmt"
	"net"

	"trueportai/services/internal/listenfd"
)

// Listeners are sockets the caller has already bound; a nil one is bound
// from GATEWAY_HTTP_ADDR / GATEWAY_GRPC_ADDR. (Role ingester serves no
// gRPC and closes a GRPC listener it is given.)
type Listeners struct {
	HTTP net.Listener
	GRPC net.Listener
}

// inheritedListeners returns the listeners passed by the parent process.
func inheritedListeners(getenv func(string) string) (Listeners, error) {
	named, err := listenfd.Listeners(getenv)
	if err != nil {
		return Listeners{}, err
	}
	ls := Listeners{HTTP: named["http"], GRPC: named["grpc"]}
	delete(named, "http")
	delete(named, "grpc")
	for name, l := range named {
		_ = l.Close()
		err = errors.Join(err, fmt.Errorf("inherited listener %q: the gateway takes http and grpc", name))
	}
	if err != nil {
		closeListeners(ls)
		return Listeners{}, err
	}
	return ls, nil
}

func closeListeners(ls Listeners) {
	for _, l := range []net.Listener{ls.HTTP, ls.GRPC} {
		if l != nil {
			_ = l.Close()
		}
	}
}

// listen returns l, or a new listener on addr when l is nil.
func listen(l net.Listener, addr, what string) (net.Listener, error) {
	if l != nil {
		return l, nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s listen %s: %w", what, addr, err)
	}
	return l, nil
}
