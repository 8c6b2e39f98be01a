package httpserver

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// stopped runs h under ServeListenerStop with stop and returns the
// server's address, the cancel that begins the stop, and a channel that
// yields ServeListenerStop's result and how long the stop took.
func stopped(t *testing.T, h http.Handler, stop Stop) (addr string, begin func(), result <-chan stopResult) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	res := make(chan stopResult, 1)
	var began time.Time
	started := make(chan struct{})
	go func() {
		err := ServeListenerStop(ctx, NewServer(h, DefaultLimits), lis, stop, slog.New(slog.DiscardHandler))
		<-started
		res <- stopResult{err, time.Since(began)}
	}()
	return lis.Addr().String(), func() { began = time.Now(); cancel(); close(started) }, res
}

type stopResult struct {
	err  error
	took time.Duration
}

// streamFrom opens a GET whose answer streams, and returns a reader
// positioned after the first line.
func streamFrom(t *testing.T, addr string) *bufio.Reader {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	br := bufio.NewReader(resp.Body)
	if line, err := br.ReadString('\n'); err != nil || line != "start\n" {
		t.Fatalf("first line %q: %v", line, err)
	}
	return br
}

// TestStopEndsWhatOutlivesGrace: a stream still open when the grace period
// ends is asked to end (End) and finishes its answer; the stop then
// completes cleanly, soon after the grace period.
func TestStopEndsWhatOutlivesGrace(t *testing.T) {
	end := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "start\n")
		w.(http.Flusher).Flush()
		<-end
		_, _ = io.WriteString(w, "final event\n")
	})
	const grace = 300 * time.Millisecond
	var endAt time.Duration
	var began time.Time
	addr, begin, result := stopped(t, h, Stop{Grace: grace, EndWait: 5 * time.Second, End: func() { endAt = time.Since(began); close(end) }})
	br := streamFrom(t, addr)
	began = time.Now()
	begin()
	rest, err := io.ReadAll(br)
	if err != nil || string(rest) != "final event\n" {
		t.Fatalf("after the grace period the client read %q (%v), want the final event", rest, err)
	}
	r := <-result
	if r.err != nil || endAt < grace || r.took > grace+2*time.Second {
		t.Fatalf("stop: %v after %s, End called after %s (grace %s)", r.err, r.took, endAt, grace)
	}
}

// TestStopIsBounded: a request that ignores End (a client that does not
// read, a handler stuck) cannot hold the stop past Grace + EndWait: its
// connection is closed.
func TestStopIsBounded(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "start\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	const grace, endWait = 200 * time.Millisecond, 300 * time.Millisecond
	ended := make(chan struct{})
	addr, begin, result := stopped(t, h, Stop{Grace: grace, EndWait: endWait, End: func() { close(ended) }})
	br := streamFrom(t, addr)
	begin()
	if _, err := io.ReadAll(br); err == nil {
		t.Log("connection closed cleanly") // either way it ends
	}
	r := <-result
	<-ended
	if r.err == nil || r.took < grace+endWait || r.took > grace+endWait+2*time.Second {
		t.Fatalf("stop: %v after %s, want an error after %s", r.err, r.took, grace+endWait)
	}
}

// TestStopDrainDelay: after the context ends the server keeps accepting
// and answering for the drain delay, then stops accepting.
func TestStopDrainDelay(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })
	const delay = 400 * time.Millisecond
	addr, begin, result := stopped(t, h, Stop{DrainDelay: delay, Grace: time.Second})
	begin()
	time.Sleep(delay / 4)
	// A new connection during the delay is served.
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + addr + "/")
	if err != nil {
		t.Fatalf("request during the drain delay: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(b) != "ok" {
		t.Fatalf("during the drain delay: %d %q", resp.StatusCode, b)
	}
	r := <-result
	if r.err != nil || r.took < delay {
		t.Fatalf("stop: %v after %s, want the drain delay %s first", r.err, r.took, delay)
	}
	if _, err := c.Get("http://" + addr + "/"); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("request after the stop: %v, want connection refused", err)
	}
}
