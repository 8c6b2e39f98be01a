package app

import "trueportai/services/internal/listenfd"

// inheritedListeners returns the listeners the parent process handed down
// (LISTEN_FDS, named "http", "grpc" and "internal": package listenfd); none
// without LISTEN_FDS.
func inheritedListeners(getenv func(string) string) (Listeners, error) {
	ls, err := listenfd.Take(getenv, "the platform", "http", "grpc", "internal")
	if err != nil {
		return Listeners{}, err
	}
	return Listeners{HTTP: ls["http"], GRPC: ls["grpc"], Internal: ls["internal"]}, nil
}
