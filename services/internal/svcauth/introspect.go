package svcauth

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	svcauthv1 "trueportai/proto/gen/trueport/svcauth/v1"
)

// Introspection serves ServiceAuthService for the tokens of one KeyRing:
// the peer asks whether a token presented to it as this service is ours,
// valid, addressed to it, and not revoked.
type Introspection struct {
	svcauthv1.UnimplementedServiceAuthServiceServer
	ring *KeyRing
	rev  Revocations
	log  *slog.Logger
	now  func() time.Time
}

// NewIntrospection serves ring's tokens, refusing those rev lists.
func NewIntrospection(ring *KeyRing, rev Revocations, log *slog.Logger, now func() time.Time) *Introspection {
	if now == nil {
		now = time.Now
	}
	return &Introspection{ring: ring, rev: rev, log: log, now: now}
}

// IntrospectToken answers active with the verified claims, or inactive
// with a reason; Unavailable when the revocation list cannot be read
// (never "active").
func (s *Introspection) IntrospectToken(ctx context.Context, req *svcauthv1.IntrospectTokenRequest) (*svcauthv1.IntrospectTokenResponse, error) {
	if req.GetToken() == "" || req.GetAudience() == "" {
		return nil, status.Error(codes.InvalidArgument, "token and audience are required")
	}
	c, err := s.ring.Verify(ctx, req.GetToken(), req.GetAudience(), s.now(), s.rev)
	var inv *InvalidError
	if errors.As(err, &inv) {
		return &svcauthv1.IntrospectTokenResponse{Active: false, Reason: inv.Reason}, nil
	}
	if err != nil {
		s.log.ErrorContext(ctx, "service token introspection", "err", err)
		return nil, status.Error(codes.Unavailable, "revocation list unavailable")
	}
	return &svcauthv1.IntrospectTokenResponse{
		Active: true, Issuer: c.Issuer, Subject: c.Subject, Audience: c.Audience, KeyId: c.KeyID, TokenId: c.ID,
		ExpiresAt: timestamppb.New(c.ExpiresAt),
	}, nil
}

// GetJWKS returns the public keys currently accepted.
func (s *Introspection) GetJWKS(context.Context, *svcauthv1.GetJWKSRequest) (*svcauthv1.GetJWKSResponse, error) {
	b, err := s.ring.JWKS(s.now())
	if err != nil {
		return nil, status.Error(codes.Internal, "internal error")
	}
	return &svcauthv1.GetJWKSResponse{JwksJson: b}, nil
}
