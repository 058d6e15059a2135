package logging

import (
	"context"
	"log/slog"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// TraceHeader is the gRPC metadata key of a caller's trace id. The proxy
// and the brokers accept it (UnaryServerInterceptor), and the proxy passes
// it on to the brokers it calls (OutgoingTrace).
const TraceHeader = "x-duomq-trace-id"

// maxTraceID bounds an accepted trace id, as message ids are bounded.
const maxTraceID = 128

type traceKey struct{}

// WithTraceID returns ctx carrying id as the trace id of lines logged with
// it; an empty id returns ctx unchanged.
func WithTraceID(ctx context.Context, id string) context.Context {
	if id == "" {
		return ctx
	}
	return context.WithValue(ctx, traceKey{}, id)
}

// TraceID returns ctx's trace id ("" when none).
func TraceID(ctx context.Context) string {
	if ctx == nil {
		return ""
	}
	id, _ := ctx.Value(traceKey{}).(string)
	return id
}

// OrTraceID returns ctx if it carries a trace id, else ctx carrying id
// (typically a message id: what a caller without a trace id of its own can
// search for).
func OrTraceID(ctx context.Context, id string) context.Context {
	if TraceID(ctx) != "" {
		return ctx
	}
	return WithTraceID(ctx, id)
}

// validTraceID accepts 1 to 128 printable ASCII characters.
func validTraceID(id string) bool {
	if id == "" || len(id) > maxTraceID {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

// incomingTraceID is the caller's trace id from the gRPC metadata ("" when
// it sent none or an invalid one).
func incomingTraceID(ctx context.Context) string {
	md, ok := metadata.FromIncomingContext(ctx)
	if !ok {
		return ""
	}
	if v := md[TraceHeader]; len(v) > 0 && validTraceID(v[0]) {
		return v[0]
	}
	return ""
}

// OutgoingTrace returns ctx with its trace id, if any, in the outgoing gRPC
// metadata, so the server called logs under the same id.
func OutgoingTrace(ctx context.Context) context.Context {
	if id := TraceID(ctx); id != "" {
		return metadata.AppendToOutgoingContext(ctx, TraceHeader, id)
	}
	return ctx
}

// UnaryServerInterceptor puts the caller's trace id (metadata
// x-duomq-trace-id) in the context of the call, so the server's lines
// about it carry trace_id, and logs a call that failed: at warn when the
// server is at fault (codes Internal, DataLoss, Unknown), else at debug.
// traceOf, which may be nil, names the trace id of a failed call whose
// caller sent none: the id of a message its request carries. Nothing is
// done per successful call beyond a metadata look-up.
func UnaryServerInterceptor(log *slog.Logger, traceOf func(req any) string) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if id := incomingTraceID(ctx); id != "" {
			ctx = WithTraceID(ctx, id)
		}
		resp, err := handler(ctx, req)
		if err == nil {
			return resp, nil
		}
		code := status.Code(err)
		level := slog.LevelDebug
		if code == codes.Internal || code == codes.DataLoss || code == codes.Unknown {
			level = slog.LevelWarn
		}
		if log.Enabled(ctx, level) {
			if traceOf != nil {
				ctx = OrTraceID(ctx, traceOf(req))
			}
			log.Log(ctx, level, "call failed", "method", info.FullMethod, "code", code.String(), "err", err)
		}
		return resp, err
	}
}
