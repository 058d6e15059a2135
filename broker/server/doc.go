// Package server is the broker's gRPC service (brokerpb.Broker) over a
// *broker.Broker: it converts requests and replies, and maps every broker
// error to a gRPC status through one table (errors.go), each status with a
// google.rpc.ErrorInfo reason that clients branch on. It holds no state.
//
// TraceIDOf names the message a failed call is about, for the log line of
// the server's logging interceptor (internal/logging).
package server
