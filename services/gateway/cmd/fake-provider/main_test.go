package main

import (
	"bufio"
	"context"
	"io"
	"maps"
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
		errc <- run(ctx, envMap(map[string]string{
			"FAKE_PROVIDER_ADDR": "127.0.0.1:0", "FAKE_PROVIDER_CHUNKS": "2", "FAKE_PROVIDER_AWS_CREDENTIALS": "AKIDKNOWN:secret",
		}), pw)
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

	// With AWS credentials configured, a SigV4 request from another key is refused.
	now := time.Now().UTC()
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/bedrock/us-east-1/model/m/converse", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Amz-Date", now.Format("20060102T150405Z"))
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDOTHER/"+now.Format("20060102")+
		"/us-east-1/bedrock/aws4_request, SignedHeaders=host;x-amz-date, Signature=00")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST converse: %v", err)
	}
	resp.Body.Close()
	if typ := resp.Header.Get("X-Amzn-Errortype"); resp.StatusCode != http.StatusForbidden || !strings.HasPrefix(typ, "UnrecognizedClientException:") {
		t.Fatalf("unknown access key: status %d, error type %q", resp.StatusCode, typ)
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

func TestLoadAWSCredentials(t *testing.T) {
	st, err := loadSettings(envMap(map[string]string{
		"FAKE_PROVIDER_AWS_CREDENTIALS": " AKID1:sec/ret+1 , AKID2:s2",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"AKID1": "sec/ret+1", "AKID2": "s2"}; !maps.Equal(st.cfg.AWSCredentials, want) {
		t.Fatalf("credentials = %v, want %v", st.cfg.AWSCredentials, want)
	}
	if _, err := loadSettings(envMap(map[string]string{"FAKE_PROVIDER_AWS_CREDENTIALS": "AKID:top-secret,broken"})); err == nil ||
		strings.Contains(err.Error(), "top-secret") {
		t.Fatalf("malformed credentials: error %v must exist and not quote a secret", err)
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
		{"FAKE_PROVIDER_AWS_CREDENTIALS": "AKID"},
		{"FAKE_PROVIDER_AWS_CREDENTIALS": "AKID:"},
		{"FAKE_PROVIDER_AWS_CREDENTIALS": "A:s1,A:s2"},
	} {
		if _, err := loadSettings(envMap(bad)); err == nil {
			t.Fatalf("%v: want an error", bad)
		}
	}
}
