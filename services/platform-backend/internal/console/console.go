// Package console serves the web console: the static files under web/
// (HTML, CSS, ES modules and the vendored uPlot), embedded in the binary,
// at /console/ on the platform's origin. The console is a client of the
// two REST APIs like any other: it holds no secret and renders nothing on
// the server; every answer carries a strict Content-Security-Policy.
package console

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"path"
	"strings"

	"github.com/labstack/echo/v4"
)

//go:embed web
var files embed.FS

// CSP allows the console's own scripts, styles and API calls only: no
// inline script or style, no eval, no other origin, no framing.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; " +
	"connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// Options configure the console.
type Options struct {
	// GatewayURL is the gateway's public base URL shown in SDK snippets
	// (the proxy routes); empty: the console's own origin (the edge routes
	// /trueportai-services/ to the gateway).
	GatewayURL string
}

// Handler serves the console's files.
type Handler struct {
	log   *slog.Logger
	opts  Options
	web   fs.FS
	etags map[string]string // file path -> strong ETag
}

// New indexes the embedded files (their ETags).
func New(log *slog.Logger, opts Options) (*Handler, error) {
	web, err := fs.Sub(files, "web")
	if err != nil {
		return nil, err
	}
	h := &Handler{log: log, opts: opts, web: web, etags: map[string]string{}}
	err = fs.WalkDir(web, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(web, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		h.etags[p] = `"` + hex.EncodeToString(sum[:16]) + `"`
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("console files: %w", err)
	}
	return h, nil
}

// Routes registers GET (and HEAD) /console, /console/ and the files below.
func (h *Handler) Routes(e *echo.Echo) {
	e.GET("/console", h.redirect)
	e.HEAD("/console", h.redirect)
	e.GET("/console/config.json", h.config)
	e.GET("/console/*", h.serve)
	e.HEAD("/console/*", h.serve)
}

func (h *Handler) redirect(c echo.Context) error {
	return c.Redirect(http.StatusMovedPermanently, "/console/")
}

// securityHeaders are set on every console answer.
func securityHeaders(hd http.Header) {
	hd.Set("Content-Security-Policy", CSP)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Cross-Origin-Resource-Policy", "same-origin")
	hd.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=(), usb=()")
}

// config tells the console where SDKs reach the gateway.
func (h *Handler) config(c echo.Context) error {
	securityHeaders(c.Response().Header())
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, map[string]string{"gateway_url": h.opts.GatewayURL})
}

func (h *Handler) serve(c echo.Context) error {
	hd := c.Response().Header()
	securityHeaders(hd)
	p := strings.TrimPrefix(c.Request().URL.Path, "/console/")
	if p == "" {
		p = "index.html"
	}
	p = path.Clean(p)
	etag, ok := h.etags[p]
	if !ok || strings.HasPrefix(p, ".") {
		return echo.NewHTTPError(http.StatusNotFound, "no such console file")
	}
	b, err := fs.ReadFile(h.web, p)
	if err != nil {
		return err
	}
	ct := mime.TypeByExtension(path.Ext(p))
	switch path.Ext(p) {
	case ".js":
		ct = "text/javascript; charset=utf-8"
	case "":
		ct = "text/plain; charset=utf-8" // LICENSE, VENDOR
	}
	hd.Set(echo.HeaderContentType, ct)
	// Files change with the binary: revalidate each time (a 304 when
	// unchanged), so a deploy never mixes old and new modules.
	hd.Set("Cache-Control", "no-cache")
	hd.Set("ETag", etag)
	if inm := c.Request().Header.Get("If-None-Match"); inm != "" && inm == etag {
		return c.NoContent(http.StatusNotModified)
	}
	return c.Blob(http.StatusOK, ct, b)
}
