// Package registry lists the providers the gateway serves. Adding a
// provider is one line here (see docs/providers.md).
package registry

import (
	"errors"

	"trueportai/services/gateway/internal/provider"
	"trueportai/services/gateway/internal/provider/anthropic"
	"trueportai/services/gateway/internal/provider/azure"
	"trueportai/services/gateway/internal/provider/bedrock"
	"trueportai/services/gateway/internal/provider/compat"
	"trueportai/services/gateway/internal/provider/google"
	"trueportai/services/gateway/internal/provider/openai"
)

// constructors build each provider from the operator's environment.
var constructors = []func(getenv func(string) string) (provider.Provider, error){
	openai.FromEnv,
	anthropic.FromEnv,
	google.FromEnv,
	azure.FromEnv,
	bedrock.FromEnv,
	compat.FromEnv,
}

// New builds every provider from the environment (upstream URL variables).
func New(getenv func(string) string) (*provider.Registry, error) {
	ps := make([]provider.Provider, 0, len(constructors))
	var errs []error
	for _, c := range constructors {
		p, err := c(getenv)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ps = append(ps, p)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return provider.NewRegistry(ps...)
}
