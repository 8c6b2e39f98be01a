package httpapi

import (
	_ "embed"
	"net/http"

	"github.com/labstack/echo/v4"
)

// openAPIDoc is the OpenAPI 3.1 description of every route Routes registers:
// the management API (keys, policies, analytics) and health
// (TestOpenAPICoversRoutes keeps the two in step). The proxy routes follow
// the providers' own APIs and are not in it.
//
//go:embed openapi.json
var openAPIDoc []byte

func openAPI(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "public, max-age=300")
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, openAPIDoc)
}
