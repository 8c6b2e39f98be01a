package deploy

// What the Kubernetes and CloudFront checks read from the services' code
// with go/parser: the environment variables each binary reads (and their
// defaults), and the HTTP route tables each binary serves.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// envNameRE is the shape of the variables the binaries read.
var envNameRE = regexp.MustCompile(`^[A-Z][A-Z0-9]*(_[A-Z0-9]+)+$`)

// envReaders are the functions (or closures) through which the services'
// code reads a variable: config.Load's get/num/dur, getenv, os.Getenv,
// os.LookupEnv and provider.EnvURL. A call's first argument that names a
// variable (a literal or a package constant) is the variable; the string
// literal after it, the default.
var envReaders = map[string]bool{
	"get": true, "getenv": true, "Getenv": true, "LookupEnv": true,
	"num": true, "dur": true, "EnvURL": true,
}

// envRead is one variable a binary reads; def is its default ("" when the
// code names none).
type envRead struct {
	def string
}

var envCache struct {
	sync.Mutex
	byTarget map[string]map[string]envRead
}

// binaryEnv returns the variables the binary built from target reads, from
// the non-test Go files of the packages it is built from within this
// repository's modules (go list -deps).
func binaryEnv(ctx context.Context, root, target string) (map[string]envRead, error) {
	envCache.Lock()
	defer envCache.Unlock()
	key := root + "\x00" + target
	if m, ok := envCache.byTarget[key]; ok {
		return m, nil
	}
	pkgs, err := listPackages(ctx, root, target)
	if err != nil {
		return nil, err
	}
	out := map[string]envRead{}
	for _, p := range pkgs {
		fset := token.NewFileSet()
		var files []*ast.File
		for _, name := range p.GoFiles {
			f, err := parser.ParseFile(fset, filepath.Join(p.Dir, name), nil, parser.SkipObjectResolution)
			if err != nil {
				return nil, err
			}
			files = append(files, f)
		}
		consts := stringConsts(files)
		for _, f := range files {
			collectEnvReads(f, consts, out)
		}
	}
	if envCache.byTarget == nil {
		envCache.byTarget = map[string]map[string]envRead{}
	}
	envCache.byTarget[key] = out
	return out, nil
}

type goPackage struct {
	Dir     string
	GoFiles []string
	Module  *struct{ Main bool }
}

// listPackages lists the packages target is built from that belong to the
// workspace's modules (not the standard library, not dependencies).
func listPackages(ctx context.Context, root, target string) ([]goPackage, error) {
	cmd := exec.CommandContext(ctx, "go", "list", "-deps", "-json=Dir,GoFiles,Module", target)
	cmd.Dir = root
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOWORK=") && !strings.HasPrefix(kv, "GOFLAGS=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list %s: %w: %s", target, err, stderr.String())
	}
	var pkgs []goPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p goPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, err
		}
		if p.Module != nil && p.Module.Main {
			pkgs = append(pkgs, p)
		}
	}
	return pkgs, nil
}

// stringConsts maps a package's string constants to their values.
func stringConsts(files []*ast.File) map[string]string {
	out := map[string]string{}
	for _, f := range files {
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, s := range gd.Specs {
				vs := s.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if i < len(vs.Values) {
						if v, ok := stringLit(vs.Values[i]); ok {
							out[n.Name] = v
						}
					}
				}
			}
		}
	}
	return out
}

// stringLit is the value of a string literal.
func stringLit(e ast.Expr) (string, bool) {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(lit.Value)
	return s, err == nil
}

// envNameOf is the variable an expression names: a literal or a constant
// of the package whose value has a variable's shape.
func envNameOf(e ast.Expr, consts map[string]string) (string, bool) {
	s, ok := stringLit(e)
	if !ok {
		if id, isID := e.(*ast.Ident); isID {
			s, ok = consts[id.Name]
		}
	}
	return s, ok && envNameRE.MatchString(s)
}

// collectEnvReads records the variables f reads: through an env reader's
// call, or in a table of {"NAME", "default", ...} rows that a loop hands to
// one.
func collectEnvReads(f *ast.File, consts map[string]string, out map[string]envRead) {
	record := func(args []ast.Expr) {
		for i, a := range args {
			name, ok := envNameOf(a, consts)
			if !ok {
				continue
			}
			r := out[name]
			if i+1 < len(args) {
				if def, ok := stringLit(args[i+1]); ok && r.def == "" {
					r.def = def
				}
			}
			out[name] = r
			return
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.CallExpr:
			var fn string
			switch f := n.Fun.(type) {
			case *ast.Ident:
				fn = f.Name
			case *ast.SelectorExpr:
				fn = f.Sel.Name
			}
			if envReaders[fn] {
				record(n.Args)
			}
		case *ast.CompositeLit:
			if len(n.Elts) >= 2 {
				if _, ok := envNameOf(n.Elts[0], consts); ok {
					record(n.Elts)
				}
			}
		}
		return true
	})
}

// route is one HTTP route a binary serves: method ("ANY" for every method)
// and echo path (":param" and "*" wildcards).
type route struct {
	method, path string
}

// routeMethods are the echo/ServeMux registration calls of a route table.
var routeMethods = map[string]bool{
	"GET": true, "POST": true, "PUT": true, "PATCH": true, "DELETE": true,
	"HEAD": true, "OPTIONS": true, "Any": true,
}

// routeTable reads the routes registered in file: in funcs (and the
// functions of the same file they call) or, with no funcs, in all of the
// file. It understands echo's e.METHOD("/path", ...), g := e.Group("/p")
// and net/http's mux.HandleFunc("METHOD /path", ...) with literal paths.
func routeTable(repo Repo, file string, funcs ...string) ([]route, error) {
	src, err := repo.read(file)
	if err != nil {
		return nil, err
	}
	f, err := parser.ParseFile(token.NewFileSet(), file, src, parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	decls := map[string]*ast.FuncDecl{}
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok && fd.Body != nil {
			decls[fd.Name.Name] = fd
		}
	}
	if len(funcs) == 0 {
		for n := range decls {
			funcs = append(funcs, n)
		}
	}
	var out []route
	seen := map[string]bool{}
	var walk func(fd *ast.FuncDecl)
	walk = func(fd *ast.FuncDecl) {
		if seen[fd.Name.Name] {
			return
		}
		seen[fd.Name.Name] = true
		groups := map[string]string{} // variable -> path prefix
		prefix := func(e ast.Expr) string {
			if id, ok := e.(*ast.Ident); ok {
				return groups[id.Name]
			}
			return ""
		}
		ast.Inspect(fd.Body, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.AssignStmt:
				if len(n.Lhs) == 1 && len(n.Rhs) == 1 {
					if call, ok := n.Rhs[0].(*ast.CallExpr); ok {
						if sel, ok := call.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "Group" && len(call.Args) > 0 {
							if p, ok := stringLit(call.Args[0]); ok {
								if id, ok := n.Lhs[0].(*ast.Ident); ok {
									groups[id.Name] = prefix(sel.X) + p
								}
							}
						}
					}
				}
			case *ast.CallExpr:
				switch fn := n.Fun.(type) {
				case *ast.SelectorExpr:
					if len(n.Args) == 0 {
						return true
					}
					p, ok := stringLit(n.Args[0])
					if !ok {
						return true
					}
					switch {
					case routeMethods[fn.Sel.Name]:
						m := fn.Sel.Name
						if m == "Any" {
							m = "ANY"
						}
						out = append(out, route{m, prefix(fn.X) + p})
					case fn.Sel.Name == "HandleFunc" || fn.Sel.Name == "Handle":
						m, path, found := strings.Cut(p, " ")
						if !found {
							m, path = "ANY", p
						}
						out = append(out, route{m, path})
					}
				case *ast.Ident:
					if callee, ok := decls[fn.Name]; ok {
						walk(callee)
					}
				}
			}
			return true
		})
	}
	for _, name := range funcs {
		fd, ok := decls[name]
		if !ok {
			return nil, fmt.Errorf("%s has no function %s", file, name)
		}
		walk(fd)
	}
	return out, nil
}

// constString reads a package-level string constant of file.
func constString(repo Repo, file, name string) (string, error) {
	src, err := repo.read(file)
	if err != nil {
		return "", err
	}
	f, err := parser.ParseFile(token.NewFileSet(), file, src, parser.SkipObjectResolution)
	if err != nil {
		return "", err
	}
	if v, ok := stringConsts([]*ast.File{f})[name]; ok {
		return v, nil
	}
	return "", fmt.Errorf("%s has no string constant %s", file, name)
}

// samplePath is a concrete request path for an echo route path: each
// ":param" becomes "x", a "*" becomes "x/y".
func samplePath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		switch {
		case strings.HasPrefix(s, ":"):
			segs[i] = "x"
		case s == "*":
			segs[i] = "x/y"
		}
	}
	return strings.Join(segs, "/")
}
