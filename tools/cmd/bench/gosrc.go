package main

// Facts the benchmarks take from the gateway's source, read with go/parser
// wherever they live under services/gateway (the packages may move): the
// benchmarks they run, the rollup latency buckets, the ingester's default
// batch, the session parameters of the gateway's pool.

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
)

const gatewayDir = "services/gateway"

// eachGoFile parses every .go file under dir (test files when tests is
// true, else the others) and calls fn with it.
func eachGoFile(dir string, tests bool, fn func(path string, f *ast.File)) error {
	fset := token.NewFileSet()
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); p != dir && (strings.HasPrefix(n, ".") || n == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") != tests {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		fn(p, f)
		return nil
	})
}

// benchDir is the directory of the package whose tests define func name.
func benchDir(name string) (string, error) {
	var found []string
	err := eachGoFile(gatewayDir, true, func(p string, f *ast.File) {
		for _, d := range f.Decls {
			if fd, ok := d.(*ast.FuncDecl); ok && fd.Recv == nil && fd.Name.Name == name {
				found = append(found, filepath.Dir(p))
			}
		}
	})
	if err != nil {
		return "", err
	}
	if len(found) != 1 {
		return "", fmt.Errorf("func %s: found in %d packages under %s %v, want 1", name, len(found), gatewayDir, found)
	}
	return found[0], nil
}

// latencyBounds is the value of `var LatencyBounds = []float64{…}`.
func latencyBounds() ([]string, error) {
	var out []string
	n := 0
	err := eachGoFile(gatewayDir, false, func(_ string, f *ast.File) {
		ast.Inspect(f, func(x ast.Node) bool {
			vs, ok := x.(*ast.ValueSpec)
			if !ok || len(vs.Names) != 1 || vs.Names[0].Name != "LatencyBounds" || len(vs.Values) != 1 {
				return true
			}
			cl, ok := vs.Values[0].(*ast.CompositeLit)
			if !ok {
				return true
			}
			n++
			out = out[:0]
			for _, e := range cl.Elts {
				if bl, ok := e.(*ast.BasicLit); ok {
					if _, err := strconv.ParseFloat(bl.Value, 64); err == nil {
						out = append(out, bl.Value)
					}
				}
			}
			return false
		})
	})
	if err == nil && (n != 1 || len(out) == 0) {
		err = fmt.Errorf("var LatencyBounds = []float64{…}: found %d under %s", n, gatewayDir)
	}
	return out, err
}

// ingesterBatch is the batch field of the &Ingester{…} literal that
// NewIngester returns: the gateway's default batch size.
func ingesterBatch() (int, error) {
	var vals []int
	err := eachGoFile(gatewayDir, false, func(_ string, f *ast.File) {
		ast.Inspect(f, func(x ast.Node) bool {
			cl, ok := x.(*ast.CompositeLit)
			if !ok {
				return true
			}
			if id, ok := cl.Type.(*ast.Ident); !ok || id.Name != "Ingester" {
				return true
			}
			for _, e := range cl.Elts {
				kv, ok := e.(*ast.KeyValueExpr)
				if !ok {
					continue
				}
				if k, ok := kv.Key.(*ast.Ident); ok && k.Name == "batch" {
					if bl, ok := kv.Value.(*ast.BasicLit); ok {
						if n, err := strconv.Atoi(bl.Value); err == nil {
							vals = append(vals, n)
						}
					}
				}
			}
			return true
		})
	})
	if err == nil && len(vals) != 1 {
		err = fmt.Errorf("Ingester{batch: N}: found %d under %s", len(vals), gatewayDir)
	}
	if err != nil {
		return 0, err
	}
	return vals[0], nil
}

// runtimeParams are the WithRuntimeParam("name", "value") calls of the
// gateway's code, as "name=value", in source order.
func runtimeParams() ([]string, error) {
	var out []string
	err := eachGoFile(gatewayDir, false, func(_ string, f *ast.File) {
		ast.Inspect(f, func(x ast.Node) bool {
			call, ok := x.(*ast.CallExpr)
			if !ok || len(call.Args) != 2 {
				return true
			}
			name := ""
			switch fn := call.Fun.(type) {
			case *ast.SelectorExpr:
				name = fn.Sel.Name
			case *ast.Ident:
				name = fn.Name
			}
			if name != "WithRuntimeParam" {
				return true
			}
			var kv []string
			for _, a := range call.Args {
				if bl, ok := a.(*ast.BasicLit); ok && bl.Kind == token.STRING {
					if s, err := strconv.Unquote(bl.Value); err == nil {
						kv = append(kv, s)
					}
				}
			}
			if len(kv) == 2 {
				out = append(out, kv[0]+"="+kv[1])
			}
			return true
		})
	})
	return out, err
}
