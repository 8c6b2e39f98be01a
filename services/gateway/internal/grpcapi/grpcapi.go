// Package grpcapi serves the gateway's gRPC API to the platform: usage
// summaries (plan enforcement, admin stats) and key counts.
package grpcapi

import (
	"context"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	gatewayv1 "trueportai/proto/gen/trueport/gateway/v1"
	"trueportai/services/gateway/internal/keys"
)

// Server implements UsageService.
type Server struct {
	gatewayv1.UnimplementedUsageServiceServer
	pool *pgxpool.Pool
	keys *keys.Store
	log  *slog.Logger
}

// New builds the server.
func New(pool *pgxpool.Pool, ks *keys.Store, log *slog.Logger) *Server {
	return &Server{pool: pool, keys: ks, log: log}
}

// GetUsageSummary totals usage of one tenant (or all) in [from, to).
func (s *Server) GetUsageSummary(ctx context.Context, req *gatewayv1.GetUsageSummaryRequest) (*gatewayv1.GetUsageSummaryResponse, error) {
	if req.GetTenantId() != "" {
		if _, err := uuid.Parse(req.GetTenantId()); err != nil {
			return nil, status.Error(codes.InvalidArgument, "tenant_id must be a UUID")
		}
	}
	from, to := time.Unix(0, 0), time.Now().Add(time.Hour)
	if req.GetFrom() != nil {
		from = req.GetFrom().AsTime()
	}
	if req.GetTo() != nil {
		to = req.GetTo().AsTime()
	}
	var out gatewayv1.GetUsageSummaryResponse
	err := s.pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE status_code >= 400), COALESCE(sum(total_tokens), 0), COALESCE(sum(cost_usd), 0)
		FROM usage_logs WHERE ($1 = '' OR tenant_id::text = $1) AND created_at >= $2 AND created_at < $3`,
		req.GetTenantId(), from, to).Scan(&out.Requests, &out.Errors, &out.TotalTokens, &out.CostUsd)
	if err != nil {
		s.log.ErrorContext(ctx, "usage summary", "err", err)
		return nil, status.Error(codes.Unavailable, "gateway database unavailable")
	}
	return &out, nil
}

// CountKeys counts a tenant's live API keys.
func (s *Server) CountKeys(ctx context.Context, req *gatewayv1.CountKeysRequest) (*gatewayv1.CountKeysResponse, error) {
	if _, err := uuid.Parse(req.GetTenantId()); err != nil {
		return nil, status.Error(codes.InvalidArgument, "tenant_id must be a UUID")
	}
	n, err := s.keys.Count(ctx, req.GetTenantId())
	if err != nil {
		s.log.ErrorContext(ctx, "count keys", "err", err)
		return nil, status.Error(codes.Unavailable, "gateway database unavailable")
	}
	return &gatewayv1.CountKeysResponse{Keys: n}, nil
}
