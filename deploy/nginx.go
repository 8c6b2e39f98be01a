package deploy

// A reader of nginx configuration files: the tokens and blocks of nginx's
// own grammar (directives end with ";", blocks are "{ }", "#" starts a
// comment, quotes and backslash escapes), and the directives the edge's
// configuration may use, per context, with their argument counts. nginx
// itself is not installed here (and Debian's is older than the resolve
// parameter the edge needs): a misspelt directive, one in the wrong block
// or with the wrong number of arguments fails this reader, as nginx -t
// would.

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ngxDirective is one directive: its name, arguments (unquoted), line, and
// block when it has one.
type ngxDirective struct {
	name    string
	args    []string
	line    int
	isBlock bool
	block   []*ngxDirective
}

func (d *ngxDirective) String() string {
	return fmt.Sprintf("%s %s (line %d)", d.name, strings.Join(d.args, " "), d.line)
}

// find returns the directives named name directly in block.
func ngxFind(block []*ngxDirective, name string) []*ngxDirective {
	var out []*ngxDirective
	for _, d := range block {
		if d.name == name {
			out = append(out, d)
		}
	}
	return out
}

// ngxToken is a token: a word (quoted or not) or one of ; { }.
type ngxToken struct {
	text   string
	quoted bool
	line   int
}

func ngxTokens(src string) ([]ngxToken, error) {
	var out []ngxToken
	line := 1
	rs := []rune(src)
	for i := 0; i < len(rs); {
		c := rs[i]
		switch {
		case c == '\n':
			line++
			i++
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case c == '#':
			for i < len(rs) && rs[i] != '\n' {
				i++
			}
		case c == ';' || c == '{' || c == '}':
			out = append(out, ngxToken{text: string(c), line: line})
			i++
		case c == '"' || c == '\'':
			start := line
			var b strings.Builder
			i++
			for {
				if i >= len(rs) {
					return nil, fmt.Errorf("line %d: unterminated quote", start)
				}
				if rs[i] == '\\' && i+1 < len(rs) {
					b.WriteRune(rs[i+1])
					i += 2
					continue
				}
				if rs[i] == c {
					i++
					break
				}
				if rs[i] == '\n' {
					line++
				}
				b.WriteRune(rs[i])
				i++
			}
			out = append(out, ngxToken{text: b.String(), quoted: true, line: start})
		default:
			var b strings.Builder
			for i < len(rs) {
				r := rs[i]
				if r == ' ' || r == '\t' || r == '\r' || r == '\n' || r == ';' || r == '}' {
					break
				}
				if r == '{' && !strings.HasSuffix(b.String(), "$") {
					break
				}
				if r == '{' { // ${variable}
					for i < len(rs) && rs[i] != '}' {
						b.WriteRune(rs[i])
						i++
					}
					if i < len(rs) {
						b.WriteRune(rs[i])
						i++
					}
					continue
				}
				if r == '\\' && i+1 < len(rs) {
					b.WriteRune(rs[i+1])
					i += 2
					continue
				}
				b.WriteRune(r)
				i++
			}
			out = append(out, ngxToken{text: b.String(), line: line})
		}
	}
	return out, nil
}

// ngxArgs bounds a directive's argument count; block marks a block
// directive.
type ngxArgs struct {
	min, max int // max < 0: unbounded
	block    bool
	flag     bool // exactly one argument, on or off
}

var (
	ngxFlag    = ngxArgs{min: 1, max: 1, flag: true}
	ngxOne     = ngxArgs{min: 1, max: 1}
	ngxOneOrMo = ngxArgs{min: 1, max: -1}
)

// ngxProxy are the proxy and client directives allowed at http, server and
// location level.
var ngxProxy = map[string]ngxArgs{
	"proxy_set_header": {min: 2, max: 2}, "proxy_http_version": ngxOne, "proxy_connect_timeout": ngxOne,
	"proxy_read_timeout": ngxOne, "proxy_send_timeout": ngxOne, "proxy_buffering": ngxFlag,
	"proxy_request_buffering": ngxFlag, "proxy_next_upstream": ngxOneOrMo, "proxy_next_upstream_tries": ngxOne,
	"proxy_next_upstream_timeout": ngxOne, "proxy_redirect": {min: 1, max: 2}, "proxy_hide_header": ngxOne,
	"proxy_pass_header": ngxOne, "proxy_intercept_errors": ngxFlag, "client_max_body_size": ngxOne,
	"client_body_timeout": ngxOne, "gzip": ngxFlag, "access_log": ngxOneOrMo, "error_log": ngxOneOrMo,
	"server_tokens": ngxOne, "sendfile": ngxFlag, "keepalive_timeout": {min: 1, max: 2}, "tcp_nodelay": ngxFlag,
	"resolver": ngxOneOrMo, "resolver_timeout": ngxOne, "default_type": ngxOne, "charset": ngxOne,
}

// ngxSchema: the directives each context may hold ("" is the main
// context).
var ngxSchema = map[string]map[string]ngxArgs{
	"": {
		"user": {min: 1, max: 2}, "worker_processes": ngxOne, "error_log": ngxOneOrMo, "pid": ngxOne,
		"worker_rlimit_nofile": ngxOne, "events": {block: true}, "http": {block: true},
	},
	"events": {"worker_connections": ngxOne, "multi_accept": ngxFlag, "use": ngxOne},
	"http": merged(ngxProxy, map[string]ngxArgs{
		"upstream": {min: 1, max: 1, block: true}, "server": {block: true}, "log_format": {min: 2, max: -1},
	}),
	"upstream": {
		"zone": {min: 1, max: 2}, "server": ngxOneOrMo, "resolver": ngxOneOrMo, "resolver_timeout": ngxOne,
		"keepalive": ngxOne, "keepalive_timeout": ngxOne, "least_conn": {}, "random": {max: 2},
	},
	"server": merged(ngxProxy, map[string]ngxArgs{
		"listen": ngxOneOrMo, "server_name": ngxOneOrMo, "location": {min: 1, max: 2, block: true}, "return": {min: 1, max: 2},
	}),
	"location": merged(ngxProxy, map[string]ngxArgs{
		"proxy_pass": ngxOne, "return": {min: 1, max: 2}, "location": {min: 1, max: 2, block: true},
	}),
}

func merged(a, b map[string]ngxArgs) map[string]ngxArgs {
	out := map[string]ngxArgs{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// parseNginx reads a configuration file and checks every directive against
// ngxSchema.
func parseNginx(src string) ([]*ngxDirective, error) {
	toks, err := ngxTokens(src)
	if err != nil {
		return nil, err
	}
	pos := 0
	var parse func(ctx string, depth int) ([]*ngxDirective, error)
	parse = func(ctx string, depth int) ([]*ngxDirective, error) {
		var out []*ngxDirective
		for pos < len(toks) {
			t := toks[pos]
			if t.text == "}" && !t.quoted {
				if depth == 0 {
					return nil, fmt.Errorf("line %d: unexpected }", t.line)
				}
				pos++
				return out, nil
			}
			if !t.quoted && (t.text == ";" || t.text == "{") {
				return nil, fmt.Errorf("line %d: unexpected %s", t.line, t.text)
			}
			d := &ngxDirective{name: t.text, line: t.line}
			pos++
			for pos < len(toks) && (toks[pos].quoted || (toks[pos].text != ";" && toks[pos].text != "{" && toks[pos].text != "}")) {
				d.args = append(d.args, toks[pos].text)
				pos++
			}
			if pos >= len(toks) {
				return nil, fmt.Errorf("line %d: %s: unexpected end of file", d.line, d.name)
			}
			spec, known := ngxSchema[ctx][d.name]
			where := ctx
			if where == "" {
				where = "main"
			}
			if !known {
				return nil, fmt.Errorf("line %d: directive %q is not allowed in %s (or not one the checks know)", d.line, d.name, where)
			}
			switch toks[pos].text {
			case "{":
				if !spec.block {
					return nil, fmt.Errorf("line %d: %s takes no block", d.line, d.name)
				}
				pos++
				d.isBlock = true
				if d.block, err = parse(d.name, depth+1); err != nil {
					return nil, err
				}
			case ";":
				if spec.block {
					return nil, fmt.Errorf("line %d: %s needs a block", d.line, d.name)
				}
				pos++
			default:
				return nil, fmt.Errorf("line %d: unexpected }", toks[pos].line)
			}
			if len(d.args) < spec.min || (spec.max >= 0 && len(d.args) > spec.max) {
				return nil, fmt.Errorf("line %d: %s takes %d to %d arguments, got %d", d.line, d.name, spec.min, spec.max, len(d.args))
			}
			if spec.flag && d.args[0] != "on" && d.args[0] != "off" {
				return nil, fmt.Errorf("line %d: %s is on or off, got %q", d.line, d.name, d.args[0])
			}
			out = append(out, d)
		}
		if depth > 0 {
			return nil, fmt.Errorf("unexpected end of file: a block is not closed")
		}
		return out, nil
	}
	return parse("", 0)
}

// ngxTime reads an nginx time ("360s", "6m", "500ms", "60" = seconds).
func ngxTime(s string) (time.Duration, bool) {
	if n, err := strconv.Atoi(s); err == nil {
		return time.Duration(n) * time.Second, true
	}
	for _, u := range []struct {
		suffix string
		unit   time.Duration
	}{{"ms", time.Millisecond}, {"s", time.Second}, {"m", time.Minute}, {"h", time.Hour}, {"d", 24 * time.Hour}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			if n, err := strconv.Atoi(v); err == nil {
				return time.Duration(n) * u.unit, true
			}
		}
	}
	return 0, false
}

// ngxLocation is a location with the chain of blocks around it (http,
// server, location...), innermost last, for inherited directives.
type ngxLocation struct {
	d     *ngxDirective
	chain [][]*ngxDirective
}

// modifier and path of a location: "= /x", "^~ /x", "/x".
func (l ngxLocation) match() (mod, path string) {
	if len(l.d.args) == 2 {
		return l.d.args[0], l.d.args[1]
	}
	return "", l.d.args[0]
}

// effective returns the directives named name that apply in the location:
// those of the innermost block (location, then server, then http) that has
// any, as nginx inherits array directives (proxy_set_header) and single
// ones alike.
func (l ngxLocation) effective(name string) []*ngxDirective {
	for i := len(l.chain) - 1; i >= 0; i-- {
		if ds := ngxFind(l.chain[i], name); len(ds) > 0 {
			return ds
		}
	}
	return nil
}

// value is the first argument of the effective directive name ("" when
// none applies).
func (l ngxLocation) value(name string) string {
	if ds := l.effective(name); len(ds) > 0 && len(ds[0].args) > 0 {
		return ds[0].args[0]
	}
	return ""
}

// header is the value the location sets request header h to, and whether
// it sets it.
func (l ngxLocation) header(h string) (string, bool) {
	for _, d := range l.effective("proxy_set_header") {
		if strings.EqualFold(d.args[0], h) {
			return d.args[1], true
		}
	}
	return "", false
}

// ngxServer is one server block of http with its locations.
type ngxServer struct {
	d         *ngxDirective
	http      []*ngxDirective
	locations []ngxLocation
}

func ngxServers(conf []*ngxDirective) []ngxServer {
	var out []ngxServer
	for _, h := range ngxFind(conf, "http") {
		for _, s := range ngxFind(h.block, "server") {
			srv := ngxServer{d: s, http: h.block}
			var walk func(block []*ngxDirective, chain [][]*ngxDirective)
			walk = func(block []*ngxDirective, chain [][]*ngxDirective) {
				for _, l := range ngxFind(block, "location") {
					c := append(slices.Clone(chain), l.block)
					srv.locations = append(srv.locations, ngxLocation{d: l, chain: c})
					walk(l.block, c)
				}
			}
			walk(s.block, [][]*ngxDirective{h.block, s.block})
			out = append(out, srv)
		}
	}
	return out
}

// locationFor is the location nginx picks for path p (nil: none): an exact
// match first, else the longest prefix. Regular-expression locations are
// refused by the checks, so they need no modelling.
func (s ngxServer) locationFor(p string) *ngxLocation {
	var best *ngxLocation
	for i := range s.locations {
		l := &s.locations[i]
		mod, path := l.match()
		if mod == "=" {
			if p == path {
				return l
			}
			continue
		}
		if strings.HasPrefix(p, path) {
			if _, bp := bestMatch(best); best == nil || len(path) > len(bp) {
				best = l
			}
		}
	}
	return best
}

func bestMatch(l *ngxLocation) (string, string) {
	if l == nil {
		return "", ""
	}
	return l.match()
}

// upstream returns the upstream block of http named name.
func (s ngxServer) upstream(name string) *ngxDirective {
	for _, u := range ngxFind(s.http, "upstream") {
		if u.args[0] == name {
			return u
		}
	}
	return nil
}
