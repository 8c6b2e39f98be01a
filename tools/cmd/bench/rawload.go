package main

// A lean HTTP/1.1 load generator for bench overload. On two shared cores the
// generator competes with the gateway: net/http's client (vegeta) spent about
// a core on 2 000 req/s and, once behind, opened a connection per pending
// request (7 600 of them while the gateway had 7 requests in its handlers),
// so it measured itself. This one writes a prepared request on a keep-alive
// connection and reads the status line, the headers it needs and the body
// (Content-Length or chunked), a few microseconds of CPU a request, over a
// fixed set of connections.
//
// Open loop: a pacer schedules requests at a fixed rate; each goes out on
// the first free connection. A request is timed from the moment it is
// written (service time: what the gateway and the network took) and from
// the moment it was due (intended time: with the wait for a free
// connection, which is the generator's or the gateway's backlog). Requests
// still unsent a second after they were due are counted as not sent.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// rawAnswer is one request's fate.
type rawAnswer struct {
	code              int // 0: no answer (err)
	service, intended time.Duration
	dial              time.Duration // the connection's set-up, when this request opened it (not in service)
	err               string
}

// rawStats are the answers of one run.
type rawStats struct {
	elapsed  time.Duration
	sent     int
	notSent  int                     // due but no connection was free within a second
	byCode   map[int][]time.Duration // service times, sorted
	intended map[int][]time.Duration // intended times, sorted
	errs     map[string]int
	dials    []time.Duration // connections opened during the run: their set-up times, sorted
}

func (s rawStats) count(code int) int { return len(s.byCode[code]) }

// pct is the p-quantile service time of the answers with code, in ms.
func (s rawStats) pct(code int, p float64) float64 { return quantile(s.byCode[code], p) }

// ipct is the p-quantile intended time of the answers with code, in ms.
func (s rawStats) ipct(code int, p float64) float64 { return quantile(s.intended[code], p) }

func quantile(l []time.Duration, p float64) float64 {
	if len(l) == 0 {
		return 0
	}
	return float64(l[min(len(l)-1, int(p*float64(len(l))))]) / 1e6
}

// rawRequest is the bytes of a POST of body to url's path with key.
func rawRequest(host, path, key string, body []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n",
		path, host, key, len(body))
	b.Write(body)
	return b.Bytes()
}

// rawConn is one keep-alive connection.
type rawConn struct {
	addr string
	c    net.Conn
	r    *bufio.Reader
}

func (rc *rawConn) close() {
	if rc.c != nil {
		rc.c.Close()
		rc.c = nil
	}
}

// do sends req and reads the answer's status; any error closes the
// connection (the next request dials again). dial is how long opening the
// connection took when this request had to (0 on a kept-alive one).
func (rc *rawConn) do(req []byte, timeout time.Duration) (code int, dial time.Duration, err error) {
	if rc.c == nil {
		begin := time.Now()
		c, err := net.DialTimeout("tcp", rc.addr, timeout)
		dial = max(time.Since(begin), 1)
		if err != nil {
			return 0, dial, err
		}
		rc.c, rc.r = c, bufio.NewReaderSize(c, 16<<10)
	}
	_ = rc.c.SetDeadline(time.Now().Add(timeout))
	if _, err := rc.c.Write(req); err != nil {
		rc.close()
		return 0, dial, err
	}
	code, err = readResponse(rc.r)
	if err != nil {
		rc.close()
		return 0, dial, err
	}
	return code, dial, nil
}

var errClose = errors.New("connection: close")

// readResponse reads one HTTP/1.1 response and returns its status.
func readResponse(r *bufio.Reader) (int, error) {
	line, err := r.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	code, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	length, chunked, closing := -1, false, false
	for {
		h, err := r.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		h = bytes.TrimRight(h, "\r\n")
		if len(h) == 0 {
			break
		}
		k, v, _ := bytes.Cut(h, []byte(":"))
		v = bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			length, _ = strconv.Atoi(string(v))
		case bytes.EqualFold(k, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(v, []byte("chunked"))
		case bytes.EqualFold(k, []byte("Connection")):
			closing = bytes.EqualFold(v, []byte("close"))
		}
	}
	switch {
	case chunked:
		for {
			sz, err := r.ReadSlice('\n')
			if err != nil {
				return 0, err
			}
			sz, _, _ = bytes.Cut(bytes.TrimRight(sz, "\r\n"), []byte(";"))
			n, err := strconv.ParseInt(string(sz), 16, 64)
			if err != nil {
				return 0, fmt.Errorf("bad chunk size %q", sz)
			}
			if _, err := r.Discard(int(n) + 2); err != nil { // data and CRLF
				return 0, err
			}
			if n == 0 {
				break // (no trailers from the gateway)
			}
		}
	case length >= 0:
		if _, err := r.Discard(length); err != nil {
			return 0, err
		}
	default:
		if _, err := io.Copy(io.Discard, r); err != nil {
			return 0, err
		}
		return code, errClose
	}
	if closing {
		return code, errClose
	}
	return code, nil
}

// rawLoad runs the generator for d: rate > 0 is an open loop over at most
// conns connections; rate 0 a closed loop of conns clients.
func rawLoad(ctx context.Context, addr string, req []byte, rate, conns int, d time.Duration) rawStats {
	const timeout = 30 * time.Second
	type token struct{ due time.Time }
	tokens := make(chan token, max(rate, 1)) // a second of backlog
	start := time.Now()
	end := start.Add(d)
	var notSent int
	pacerDone := make(chan struct{})
	if rate > 0 {
		go func() {
			defer close(pacerDone)
			defer close(tokens)
			tick := time.NewTicker(time.Millisecond)
			defer tick.Stop()
			sent := 0
			for now := range tick.C {
				if now.After(end) || ctx.Err() != nil {
					return
				}
				for due := int(now.Sub(start).Seconds() * float64(rate)); sent < due; sent++ {
					at := start.Add(time.Duration(float64(sent) / float64(rate) * float64(time.Second)))
					select {
					case tokens <- token{at}:
					default:
						notSent++ // a full second behind
					}
				}
			}
		}()
	} else {
		close(pacerDone)
	}
	results := make([][]rawAnswer, conns)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Go(func() {
			rc := &rawConn{addr: addr}
			defer rc.close()
			out := make([]rawAnswer, 0, 1024)
			one := func(due time.Time) {
				begin := time.Now()
				code, dial, err := rc.do(req, timeout)
				now := time.Now()
				a := rawAnswer{code: code, service: now.Sub(begin) - dial, intended: now.Sub(due), dial: dial}
				if err != nil && !errors.Is(err, errClose) {
					a.code, a.err = 0, err.Error()
				}
				out = append(out, a)
			}
			if rate > 0 {
				for tok := range tokens {
					one(tok.due)
				}
			} else {
				for time.Now().Before(end) && ctx.Err() == nil {
					one(time.Now())
				}
			}
			results[i] = out
		})
	}
	<-pacerDone
	wg.Wait()
	st := rawStats{elapsed: time.Since(start), notSent: notSent, byCode: map[int][]time.Duration{}, intended: map[int][]time.Duration{},
		errs: map[string]int{}}
	for _, out := range results {
		for _, a := range out {
			st.sent++
			if a.dial > 0 {
				st.dials = append(st.dials, a.dial)
			}
			st.byCode[a.code] = append(st.byCode[a.code], a.service)
			st.intended[a.code] = append(st.intended[a.code], a.intended)
			if a.err != "" {
				e := a.err // "read tcp a->b: i/o timeout" -> "i/o timeout"
				if i := strings.LastIndex(e, ": "); i >= 0 {
					e = e[i+2:]
				}
				st.errs[e]++
			}
		}
	}
	slices.Sort(st.dials)
	for c := range st.byCode {
		slices.Sort(st.byCode[c])
		slices.Sort(st.intended[c])
	}
	if rate == 0 {
		st.elapsed = d
	}
	return st
}
