package main

// The stack of bench proxy and bench overload: loopback ports, a scratch
// directory, a NATS prefix and the gateway layouts of one run, and their
// teardown. startAll (proxy.go) then starts the processes on them.

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
)

// stackPorts name the run's loopback ports, from the base port on.
var stackPorts = []string{"platform_http", "gateway_http", "fake", "bare", "platform_grpc", "gateway_grpc", "ingester_http",
	"platform_internal", "gateway_internal", "ingester_internal", "gwproxy_http", "gwproxy_grpc", "gwproxy_internal"}

// newStack reserves cfg.base and the ports after it (portKnob: the
// variable that moves them), a scratch directory for the logs and the
// spool, a NATS prefix (word and 8 random hex digits) and the gateway of
// every layout in cfg.layouts: role all on the gateway_* ports and the
// prefix, role proxy on the gwproxy_* ports and the prefix with an "x",
// with its ingester process on the ingester_* ports. Call close when done.
func newStack(who, word, portKnob string, cfg proxyConfig) (*proxyBench, error) {
	for _, bin := range []string{"platform-backend", "gateway", "fake-provider"} {
		if st, err := os.Stat("bin/" + bin); err != nil || st.Mode()&0o111 == 0 {
			return nil, fmt.Errorf("bin/%s is missing: run make build (make bench and make overload build first)", bin)
		}
	}
	b := &proxyBench{cfg: cfg, reqs: map[string]request{}, lua: map[string]string{}, addr: map[string]string{}, gws: map[string]*gatewayProc{}}
	for i, n := range stackPorts {
		a := fmt.Sprintf("127.0.0.1:%d", cfg.base+i)
		if !portFree(a) {
			return nil, fmt.Errorf("%s is in use (set %s)", a, portKnob)
		}
		b.addr[n] = a
	}
	var err error
	if b.tmp, err = os.MkdirTemp("", "trueport-"+word+"."); err != nil {
		return nil, err
	}
	for _, d := range []string{"logs", "spool"} {
		if err := os.MkdirAll(filepath.Join(b.tmp, d), 0o755); err != nil {
			os.RemoveAll(b.tmp)
			return nil, err
		}
	}
	rnd := make([]byte, 4)
	_, _ = rand.Read(rnd)
	b.prefix = word + hex.EncodeToString(rnd)
	b.ps = newProcs(who, filepath.Join(b.tmp, "logs"))
	for _, l := range cfg.layouts {
		g := &gatewayProc{layout: l, http: b.addr["gateway_http"], grpc: b.addr["gateway_grpc"], internal: b.addr["gateway_internal"], prefix: b.prefix}
		if l == "proxy" {
			g.http, g.grpc, g.internal, g.prefix = b.addr["gwproxy_http"], b.addr["gwproxy_grpc"], b.addr["gwproxy_internal"], b.prefix+"x"
			g.ingHTTP, g.ingInternal = b.addr["ingester_http"], b.addr["ingester_internal"]
		}
		b.gws[l] = g
	}
	return b, nil
}

// close stops every process (the gateways before the platform), deletes
// the run's streams and the scratch directory; after a failure (err) it
// first shows the last lines of every log.
func (b *proxyBench) close(err error) {
	b.ps.stopAll("gateway-all", "gateway-proxy", "ingester", "platform-backend", "benchproxy", "fake-provider")
	b.deleteStreams()
	if err != nil {
		say(b.ps.who, "failed: %v; last log lines:", err)
		b.ps.tails(15)
	}
	os.RemoveAll(b.tmp)
}
