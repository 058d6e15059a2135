// Package api holds the protobuf definitions of duomq's gRPC services and
// their generated Go code (one sub-package per service, e.g. brokerpb).
//
// The generated code is committed so that building needs no protoc.
// Regenerate after editing a .proto with
//
//	go generate ./api/...
//
// which uses the protoc-gen-go and protoc-gen-go-grpc versions pinned in
// go.mod. api/check-generated.sh (run by .ci/run) fails when the committed
// code is out of date.
package api

//go:generate ./generate.sh
