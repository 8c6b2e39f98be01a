package app

import (
	"runtime"
	"runtime/debug"

	"trueportai/services/gateway/internal/config"
)

// applyRuntime sets the process's soft memory limit (unless GOMEMLIMIT
// set one) and the block and mutex profile rates.
func applyRuntime(cfg config.Config, getenv func(string) string) {
	if cfg.MemoryLimit > 0 && getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(cfg.MemoryLimit)
	}
	if cfg.PprofBlockRate > 0 {
		runtime.SetBlockProfileRate(cfg.PprofBlockRate)
	}
	if cfg.PprofMutexFraction > 0 {
		runtime.SetMutexProfileFraction(cfg.PprofMutexFraction)
	}
}
