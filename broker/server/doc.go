// Package server is the broker's gRPC service (brokerpb.Broker) over a
// *broker.Broker: it converts requests and replies, and maps every broker
// error to a gRPC status through one table (errors.go), each status with a
// google.rpc.ErrorInfo reason that clients branch on. It holds no state.
package server
