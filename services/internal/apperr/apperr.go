// Package apperr is the one error vocabulary of both services: a kind that maps
// to an HTTP status and a gRPC code, a snake_case code, and a human message.
package apperr

import (
	"errors"
	"fmt"
	"net/http"

	"google.golang.org/grpc/codes"
)

// Kind classifies an error for transport mapping.
type Kind int

// Kinds, named after what the caller did wrong (or what failed).
const (
	Internal Kind = iota
	Invalid
	Unauthenticated
	Forbidden
	NotFound
	Conflict
	TooLarge
	UnsupportedMedia
	Unprocessable
	RateLimited
	Unavailable
	MethodNotAllowed
	// RequestTimeout: the client did not send its request (body) in time.
	RequestTimeout
)

// Error is an error a client may see.
type Error struct {
	Kind    Kind
	Code    string
	Message string
	Details map[string]any
	// RetryAfter is set on RateLimited errors (seconds).
	RetryAfter int
	cause      error
}

func (e *Error) Error() string {
	if e.cause != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.cause)
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.cause }

// New builds an error of the given kind.
func New(k Kind, code, msg string) *Error {
	return &Error{Kind: k, Code: code, Message: msg}
}

// InvalidField is a 400 naming the offending field.
func InvalidField(field, msg string) *Error {
	return &Error{Kind: Invalid, Code: "invalid_" + field, Message: msg, Details: map[string]any{"field": field}}
}

// Wrap attaches a cause (logged, never shown) to a client-visible error.
func Wrap(k Kind, code, msg string, cause error) *Error {
	return &Error{Kind: k, Code: code, Message: msg, cause: cause}
}

// WithDetails returns a copy of e with details set. e itself is left alone,
// so details can be added to an error value that concurrent requests share.
func (e *Error) WithDetails(d map[string]any) *Error {
	c := *e
	c.Details = d
	return &c
}

// As extracts an *Error; ok is false for foreign errors.
func As(err error) (*Error, bool) {
	var ae *Error
	if errors.As(err, &ae) {
		return ae, true
	}
	return nil, false
}

// HTTPStatus maps a kind to its HTTP status.
func (k Kind) HTTPStatus() int {
	switch k {
	case Invalid:
		return http.StatusBadRequest
	case Unauthenticated:
		return http.StatusUnauthorized
	case Forbidden:
		return http.StatusForbidden
	case NotFound:
		return http.StatusNotFound
	case Conflict:
		return http.StatusConflict
	case TooLarge:
		return http.StatusRequestEntityTooLarge
	case UnsupportedMedia:
		return http.StatusUnsupportedMediaType
	case Unprocessable:
		return http.StatusUnprocessableEntity
	case RateLimited:
		return http.StatusTooManyRequests
	case Unavailable:
		return http.StatusServiceUnavailable
	case MethodNotAllowed:
		return http.StatusMethodNotAllowed
	case RequestTimeout:
		return http.StatusRequestTimeout
	default:
		return http.StatusInternalServerError
	}
}

// GRPCCode maps a kind to its gRPC status code.
func (k Kind) GRPCCode() codes.Code {
	switch k {
	case Invalid, Unprocessable, TooLarge, UnsupportedMedia:
		return codes.InvalidArgument
	case MethodNotAllowed:
		return codes.Unimplemented
	case Unauthenticated:
		return codes.Unauthenticated
	case Forbidden:
		return codes.PermissionDenied
	case NotFound:
		return codes.NotFound
	case Conflict:
		return codes.AlreadyExists
	case RateLimited:
		return codes.ResourceExhausted
	case Unavailable:
		return codes.Unavailable
	case RequestTimeout:
		return codes.DeadlineExceeded
	default:
		return codes.Internal
	}
}
