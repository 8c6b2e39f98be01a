package svcauth

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Methods that take no service token:
//   - the standard health service, for probes that hold no token (it says
//     SERVING or not, nothing else; behind mutual TLS when configured);
//   - ServiceAuthService itself: it is how the peer checks a token, so
//     asking it with a token would need the answer first. It tells whether
//     a token is ours and publishes public keys; with mutual TLS only the
//     other service's certificate reaches it.
//
// Reflection is never registered.
const (
	healthPrefix      = "/grpc.health.v1.Health/"
	serviceAuthPrefix = "/trueport.svcauth.v1.ServiceAuthService/"
)

// ACL lists, per gRPC service ("/pkg.Service/") or full method
// ("/pkg.Service/Method"), the issuers whose tokens may call it. A method
// it does not cover is refused to every caller (PermissionDenied).
type ACL map[string][]string

func (a ACL) allows(method, issuer string) bool {
	if callers, ok := a[method]; ok {
		return slices.Contains(callers, issuer)
	}
	if i := strings.LastIndexByte(method, '/'); i > 0 {
		if callers, ok := a[method[:i+1]]; ok {
			return slices.Contains(callers, issuer)
		}
	}
	return false
}

type callerKey struct{}

// Caller returns the verified service token of the call ctx belongs to.
func Caller(ctx context.Context) (Claims, bool) {
	c, ok := ctx.Value(callerKey{}).(Claims)
	return c, ok
}

// Open reports whether method takes no service token.
func Open(method string) bool {
	return strings.HasPrefix(method, healthPrefix) || strings.HasPrefix(method, serviceAuthPrefix)
}

// authorize checks the call's token: Unauthenticated when it is missing
// or refused, Unavailable when its issuer cannot be asked,
// PermissionDenied when acl does not let its issuer call method.
func authorize(ctx context.Context, v *Verifier, acl ACL, method string, log *slog.Logger) (context.Context, error) {
	if Open(method) {
		return ctx, nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	if len(vals) != 1 {
		return nil, status.Error(codes.Unauthenticated, "a service token is required")
	}
	tok, ok := strings.CutPrefix(vals[0], "Bearer ")
	if !ok {
		return nil, status.Error(codes.Unauthenticated, "a service token is required")
	}
	c, err := v.Verify(ctx, tok)
	if errors.Is(err, ErrUnavailable) {
		return nil, status.Error(codes.Unavailable, "the service token cannot be checked now")
	}
	if err != nil {
		log.WarnContext(ctx, "service token refused", "method", method, "reason", ReasonOf(err))
		return nil, status.Error(codes.Unauthenticated, "invalid service token")
	}
	if !acl.allows(method, c.Issuer) {
		log.WarnContext(ctx, "service not allowed", "method", method, "caller", c.String())
		return nil, status.Errorf(codes.PermissionDenied, "%s may not call %s", c.Issuer, method)
	}
	return context.WithValue(ctx, callerKey{}, c), nil
}

// ServerOptions are interceptors requiring a valid service token allowed
// by acl on every call but the open methods.
func ServerOptions(v *Verifier, acl ACL, log *slog.Logger) []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			ctx, err := authorize(ctx, v, acl, info.FullMethod, log)
			if err != nil {
				return nil, err
			}
			return h(ctx, req)
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			ctx, err := authorize(ss.Context(), v, acl, info.FullMethod, log)
			if err != nil {
				return err
			}
			return h(srv, &wrappedStream{ServerStream: ss, ctx: ctx})
		}),
	}
}

type wrappedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (w *wrappedStream) Context() context.Context { return w.ctx }
