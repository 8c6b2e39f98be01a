package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// envMap returns a getenv function backed by m.
func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestRunServesAndShutsDown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, envMap(map[string]string{"FAKE_PROVIDER_ADDR": "127.0.0.1:0", "FAKE_PROVIDER_CHUNKS": "2"}), pw)
		pw.Close()
	}()

	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the listening line: %v", err)
	}
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "fake-provider listening on ")
	if !ok {
		t.Fatalf("unexpected first line %q", line)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()

	resp, err := http.Get("http://" + addr + "/health")
	if err != nil {
		t.Fatalf("GET /health: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("health status = %d", resp.StatusCode)
	}

	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("run returned %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("run did not return after cancellation")
	}
}

func TestRunShutdownEndsOpenStream(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	env := map[string]string{"FAKE_PROVIDER_ADDR": "127.0.0.1:0", "FAKE_PROVIDER_CHUNK_DELAY_MS": "60000"}
	go func() {
		errc <- run(ctx, envMap(env), pw)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	addr := strings.TrimPrefix(strings.TrimSpace(line), "fake-provider listening on ")

	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/openai/v1/chat/completions",
		strings.NewReader(`{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer k")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil {
		t.Fatal(err)
	}

	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("run returned %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("shutdown waited for a slow stream")
	}
}

func TestLoadSettings(t *testing.T) {
	st, err := loadSettings(envMap(nil))
	if err != nil || st.addr != defaultAddr || st.cfg.Chunks != 0 || st.cfg.Delay != 0 {
		t.Fatalf("defaults = %+v, %v", st, err)
	}
	st, err = loadSettings(envMap(map[string]string{
		"FAKE_PROVIDER_ADDR":           ":9999",
		"FAKE_PROVIDER_DELAY_MS":       "25",
		"FAKE_PROVIDER_CHUNKS":         "7",
		"FAKE_PROVIDER_CHUNK_DELAY_MS": "3",
		"FAKE_PROVIDER_LOG_LEVEL":      "debug",
	}))
	if err != nil || st.addr != ":9999" || st.cfg.Delay != 25*time.Millisecond || st.cfg.Chunks != 7 ||
		st.cfg.ChunkDelay != 3*time.Millisecond || st.logLevel.String() != "DEBUG" {
		t.Fatalf("settings = %+v, %v", st, err)
	}
	for _, bad := range []map[string]string{
		{"FAKE_PROVIDER_DELAY_MS": "soon"},
		{"FAKE_PROVIDER_CHUNKS": "-1"},
		{"FAKE_PROVIDER_LOG_LEVEL": "loud"},
	} {
		if _, err := loadSettings(envMap(bad)); err == nil {
			t.Fatalf("%v: want an error", bad)
		}
	}
}
