// Package gatewayclient asks the gateway (gRPC UsageService) for what only it
// knows: a tenant's API key count and usage totals. Transport errors become
// apperr errors here; proto types stay inside this package.
package gatewayclient

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	gatewayv1 "trueportai/proto/gen/trueport/gateway/v1"
	"trueportai/services/internal/apperr"
	"trueportai/services/internal/money"
)

// Usage is a usage total over a period.
type Usage struct {
	Requests    int64
	Errors      int64
	TotalTokens int64
	CostUSD     money.USD
}

// Client calls the gateway's UsageService.
type Client struct {
	conn    *grpc.ClientConn
	usage   gatewayv1.UsageServiceClient
	timeout time.Duration
}

// New returns a client for the gateway at addr; it connects lazily, so a
// gateway that is down at start-up is not an error (calls then fail with
// 503 gateway_unavailable). Each call is bounded by timeout. extra must
// set the transport (mutual TLS, or plaintext in dev) and the service
// token.
func New(addr string, timeout time.Duration, extra ...grpc.DialOption) (*Client, error) {
	opts := append([]grpc.DialOption{
		// Reconnect quickly once the gateway is back (the default backoff
		// grows to two minutes).
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 200 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 5 * time.Second},
			MinConnectTimeout: timeout,
		}),
	}, extra...)
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("gateway grpc client %s: %w", addr, err)
	}
	return &Client{conn: conn, usage: gatewayv1.NewUsageServiceClient(conn), timeout: timeout}, nil
}

// Conn is the connection to the gateway, for its other services (the
// introspection of its service tokens).
func (c *Client) Conn() *grpc.ClientConn { return c.conn }

// Close releases the connection.
func (c *Client) Close() error { return c.conn.Close() }

// CountKeys returns the number of live API keys of a tenant.
func (c *Client) CountKeys(ctx context.Context, tenantID string) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resp, err := c.usage.CountKeys(ctx, &gatewayv1.CountKeysRequest{TenantId: tenantID})
	if err != nil {
		return 0, toAppError("count keys", err)
	}
	return resp.GetKeys(), nil
}

// UsageSummary totals a tenant's usage in [from, to); tenantID "" means every
// tenant.
func (c *Client) UsageSummary(ctx context.Context, tenantID string, from, to time.Time) (Usage, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resp, err := c.usage.GetUsageSummary(ctx, &gatewayv1.GetUsageSummaryRequest{
		TenantId: tenantID, From: timestamppb.New(from), To: timestamppb.New(to),
	})
	if err != nil {
		return Usage{}, toAppError("usage summary", err)
	}
	return toUsage(resp), nil
}

func toUsage(r *gatewayv1.GetUsageSummaryResponse) Usage {
	cost := money.FromFloat(r.GetCostUsd()) // a gateway older than cost_usd_e10
	if r.CostUsdE10 != nil {
		cost = money.USD(r.GetCostUsdE10())
	}
	return Usage{Requests: r.GetRequests(), Errors: r.GetErrors(), TotalTokens: r.GetTotalTokens(), CostUSD: cost}
}

// toAppError maps a gRPC failure: anything but a refusal of the arguments
// means the gateway cannot answer now (503), never "allow".
func toAppError(op string, err error) error {
	cause := fmt.Errorf("gateway %s: %w", op, err)
	if status.Code(err) == codes.InvalidArgument {
		return apperr.Wrap(apperr.Internal, "internal_error", "internal error", cause)
	}
	return apperr.Wrap(apperr.Unavailable, "gateway_unavailable", "the gateway cannot be reached to check usage; try again shortly", cause)
}
