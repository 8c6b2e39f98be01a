// Package grpcapi serves the platform's gRPC API to the gateway: token
// introspection, JWKS and tenant context.
package grpcapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	platformv1 "trueportai/proto/gen/trueport/platform/v1"
	"trueportai/services/platform-backend/internal/configs"
	"trueportai/services/platform-backend/internal/secretbox"
	"trueportai/services/platform-backend/internal/store"
	"trueportai/services/platform-backend/internal/team"
	"trueportai/services/platform-backend/internal/token"
)

// Server implements AuthService and TenantService.
type Server struct {
	platformv1.UnimplementedAuthServiceServer
	platformv1.UnimplementedTenantServiceServer
	platformv1.UnimplementedConfigServiceServer
	log    *slog.Logger
	store  *store.Store
	tokens *token.Issuer
	box    *secretbox.Box
}

// New builds the server.
func New(log *slog.Logger, st *store.Store, tokens *token.Issuer, box *secretbox.Box) *Server {
	return &Server{log: log, store: st, tokens: tokens, box: box}
}

func inactive(reason string) *platformv1.IntrospectTokenResponse {
	return &platformv1.IntrospectTokenResponse{Active: false, Reason: reason}
}

// IntrospectToken validates a token against keys, revocation (token version)
// and the current membership, returning the current role.
func (s *Server) IntrospectToken(ctx context.Context, req *platformv1.IntrospectTokenRequest) (*platformv1.IntrospectTokenResponse, error) {
	if req.GetToken() == "" {
		return nil, status.Error(codes.InvalidArgument, "token is required")
	}
	claims, err := s.tokens.Parse(req.GetToken())
	var inv *token.ErrInvalid
	if errors.As(err, &inv) {
		return inactive(inv.Reason), nil
	}
	if err != nil {
		return nil, status.Error(codes.Internal, "internal error")
	}
	u, err := s.store.UserByID(ctx, claims.Subject)
	if errors.Is(err, store.ErrNotFound) {
		return inactive("unknown_user"), nil
	}
	if err != nil {
		s.log.ErrorContext(ctx, "introspect: load user", "err", err)
		return nil, status.Error(codes.Unavailable, "platform database unavailable")
	}
	if u.TokenVersion != claims.Version {
		return inactive("revoked"), nil
	}
	resp := &platformv1.IntrospectTokenResponse{
		Active: true, TokenType: claims.Type, UserId: u.ID, Email: u.Email, PlatformAdmin: u.PlatformAdmin,
		ExpiresAt: timestamppb.New(claims.ExpiresAt),
	}
	if claims.Type == token.TypeScoped {
		m, err := s.store.Membership(ctx, claims.TenantID, u.ID)
		if errors.Is(err, store.ErrNotFound) {
			return inactive("not_a_member"), nil
		}
		if err != nil {
			s.log.ErrorContext(ctx, "introspect: load membership", "err", err)
			return nil, status.Error(codes.Unavailable, "platform database unavailable")
		}
		if m.Status != team.StatusActive {
			return inactive("tenant_suspended"), nil
		}
		resp.TenantId, resp.Role, resp.Env = m.ID, string(m.Role), claims.Env
	}
	return resp, nil
}

// GetJWKS returns the public keys.
func (s *Server) GetJWKS(context.Context, *platformv1.GetJWKSRequest) (*platformv1.GetJWKSResponse, error) {
	b, err := s.tokens.JWKS()
	if err != nil {
		return nil, status.Error(codes.Internal, "internal error")
	}
	return &platformv1.GetJWKSResponse{JwksJson: b}, nil
}

// GetTenantContext returns status, plan limits, decrypted provider
// credentials and storage settings of one tenant.
func (s *Server) GetTenantContext(ctx context.Context, req *platformv1.GetTenantContextRequest) (*platformv1.GetTenantContextResponse, error) {
	t, err := s.store.TenantByID(ctx, req.GetTenantId())
	if errors.Is(err, store.ErrNotFound) {
		return nil, status.Error(codes.NotFound, "no such tenant")
	}
	if err != nil {
		return nil, s.unavailable(ctx, "load tenant", err)
	}
	plan, err := s.store.TenantPlan(ctx, t.ID, t.PlanID) // overrides applied
	if err != nil {
		return nil, s.unavailable(ctx, "load plan", err)
	}
	rows, err := s.store.Configs(ctx, t.ID)
	if err != nil {
		return nil, s.unavailable(ctx, "load configs", err)
	}
	st, err := s.store.StorageSettings(ctx, t.ID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, s.unavailable(ctx, "load storage", err)
	}
	tc := &platformv1.TenantContext{
		TenantId: t.ID, Slug: t.Slug, Status: t.Status, PlanId: t.PlanID,
		Limits: &platformv1.PlanLimits{
			MonthlyRequests: plan.MonthlyRequests, MaxApiKeys: plan.MaxAPIKeys, MaxMembers: plan.MaxMembers,
			MaxRpmPerKey: plan.MaxRPMPerKey, RetentionDays: plan.RetentionDays,
		},
		Providers: map[string]*platformv1.ProviderConfig{},
		Storage: &platformv1.StorageSettings{
			LogRequestBodies: st.LogRequestBodies, LogResponseBodies: st.LogResponseBodies,
			RedactLoggedBodies: st.RedactLoggedBodies, RetentionDays: st.RetentionDays,
		},
		DefaultRpm: 60,
	}
	for _, p := range configs.Providers() {
		tc.Providers[p] = &platformv1.ProviderConfig{}
	}
	for _, r := range rows {
		if err := s.applyConfig(tc, r); err != nil {
			s.log.ErrorContext(ctx, "tenant context: bad stored config", "tenant_id", t.ID, "key", r.Key, "err", err)
		}
	}
	return &platformv1.GetTenantContextResponse{Tenant: tc}, nil
}

func (s *Server) applyConfig(tc *platformv1.TenantContext, r configs.Entry) error {
	if rest, ok := strings.CutPrefix(r.Key, "providers."); ok {
		// providers.{provider}.{field}, or providers.compat.{name}.{field}
		// for the provider "compat.{name}".
		dot := strings.LastIndexByte(rest, '.')
		if dot < 0 {
			return nil
		}
		prov, field := rest[:dot], rest[dot+1:]
		pc, ok := tc.Providers[prov]
		if !ok && configs.IsCompat(r.Key) {
			pc = &platformv1.ProviderConfig{}
			tc.Providers[prov] = pc
		} else if !ok {
			return nil
		}
		def, _ := configs.Lookup(r.Key)
		if def.Type == configs.StringList {
			var list []string
			if err := json.Unmarshal([]byte(r.Value), &list); err != nil {
				return err
			}
			switch field {
			case "resources":
				pc.Resources = list
			case "deployments":
				pc.Deployments = make(map[string]string, len(list))
				for _, e := range list {
					if dep, model, ok := strings.Cut(e, "="); ok {
						pc.Deployments[dep] = strings.TrimSpace(model)
					}
				}
			}
			return nil
		}
		var val string
		if def.Secret {
			plain, err := s.box.Open(r.Value, configs.AAD(tc.TenantId, r.Key))
			if err != nil {
				return err
			}
			val = plain
		} else if err := json.Unmarshal([]byte(r.Value), &val); err != nil {
			return err
		}
		switch field {
		case "api_key":
			pc.ApiKey = val
		case "base_url":
			pc.BaseUrl = val
		case "region":
			pc.Region = val
		case "access_key_id":
			pc.AccessKeyId = val
		case "secret_access_key":
			pc.SecretAccessKey = val
		}
		return nil
	}
	switch r.Key {
	case "gateway.default_rpm":
		n, err := strconv.ParseInt(r.Value, 10, 64)
		if err != nil {
			return err
		}
		tc.DefaultRpm = n
	case "gateway.allowed_models":
		return json.Unmarshal([]byte(r.Value), &tc.AllowedModels)
	}
	return nil
}

func (s *Server) unavailable(ctx context.Context, op string, err error) error {
	s.log.ErrorContext(ctx, "tenant context: "+op, "err", err)
	return status.Error(codes.Unavailable, "platform database unavailable")
}

// GetGatewayConfig returns the platform-wide settings the gateway applies.
func (s *Server) GetGatewayConfig(ctx context.Context, _ *platformv1.GetGatewayConfigRequest) (*platformv1.GetGatewayConfigResponse, error) {
	row, err := s.store.GlobalConfig(ctx, "pricing.overrides")
	if errors.Is(err, store.ErrNotFound) {
		return &platformv1.GetGatewayConfigResponse{PricingOverridesJson: "{}"}, nil
	}
	if err != nil {
		return nil, s.unavailable(ctx, "load global config", err)
	}
	return &platformv1.GetGatewayConfigResponse{PricingOverridesJson: row.Value}, nil
}
