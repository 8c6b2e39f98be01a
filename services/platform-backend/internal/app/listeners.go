package app

import (
	"errors"
	"fmt"

	"trueportai/services/internal/listenfd"
)

// inheritedListeners returns the listeners the parent process handed down
// (LISTEN_FDS, named "http" and "grpc": package listenfd); none without
// LISTEN_FDS.
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
		err = errors.Join(err, fmt.Errorf("inherited listener %q: the platform takes http and grpc", name))
	}
	if err != nil {
		for _, l := range []interface{ Close() error }{ls.HTTP, ls.GRPC} {
			if l != nil {
				_ = l.Close()
			}
		}
		return Listeners{}, err
	}
	return ls, nil
}
