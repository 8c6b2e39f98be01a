// Package grpcapi serves the gateway's gRPC API to the platform: usage
// summaries (plan enforcement, admin stats) and key counts.
package grpcapi

import (
	"context"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	gatewayv1 "trueportai/proto/gen/trueport/gateway/v1"
	"trueportai/services/gateway/internal/analytics"
	"trueportai/services/gateway/internal/keys"
)

// Server implements UsageService.
type Server struct {
	gatewayv1.UnimplementedUsageServiceServer
	usage *analytics.Store
	keys  *keys.Store
	log   *slog.Logger
}

// New builds the server.
func New(usage *analytics.Store, ks *keys.Store, log *slog.Logger) *Server {
	return &Server{usage: usage, keys: ks, log: log}
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
	sum, err := s.usage.Summary(ctx, req.GetTenantId(), from, to)
	if err != nil {
		s.log.ErrorContext(ctx, "usage summary", "err", err)
		return nil, status.Error(codes.Unavailable, "gateway database unavailable")
	}
	cost := int64(sum.CostUSD)
	return &gatewayv1.GetUsageSummaryResponse{Requests: sum.Requests, Errors: sum.Errors, TotalTokens: sum.TotalTokens,
		CostUsd: sum.CostUSD.Float64(), CostUsdE10: &cost}, nil
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
