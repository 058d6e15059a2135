// Package auth is the request signature of duomq's proxy API, shared by the
// proxy (which verifies it) and the SDK (which signs every call).
//
// A signed call carries three gRPC metadata entries: the application's
// access key, the time of signing in unix milliseconds, and
//
//	hex(HMAC-SHA256(secret, accessKey + "\n" + timestamp + "\n" + fullMethod))
//
// where fullMethod is the gRPC method, e.g. "/duomq.proxy.v1.Proxy/Send".
// The secret never travels; the timestamp bounds replays to the proxy's
// allowed clock skew.
package auth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"

	"google.golang.org/grpc/credentials"
)

// Metadata keys of a signed call.
const (
	MDAccessKey = "x-duomq-access-key"
	MDTimestamp = "x-duomq-timestamp"
	MDSignature = "x-duomq-signature"
)

// Sign returns the signature of one call: hex(HMAC-SHA256(secret,
// accessKey "\n" timestamp "\n" fullMethod)); timestamp is the decimal unix
// time in milliseconds.
func Sign(secret, accessKey, timestamp, fullMethod string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(accessKey + "\n" + timestamp + "\n" + fullMethod))
	return hex.EncodeToString(m.Sum(nil))
}

// Verify reports whether signature is the one Sign computes, in constant
// time.
func Verify(secret, accessKey, timestamp, fullMethod, signature string) bool {
	want := Sign(secret, accessKey, timestamp, fullMethod)
	return hmac.Equal([]byte(want), []byte(signature))
}

// Metadata returns the three metadata entries of a call signed at now, as
// key-value pairs for metadata.AppendToOutgoingContext.
func Metadata(accessKey, secret, fullMethod string, now time.Time) []string {
	ts := strconv.FormatInt(now.UnixMilli(), 10)
	return []string{MDAccessKey, accessKey, MDTimestamp, ts, MDSignature, Sign(secret, accessKey, ts, fullMethod)}
}

// Credentials signs every call of a gRPC connection
// (grpc.WithPerRPCCredentials). They do not require transport security:
// the secret itself is never sent.
type Credentials struct {
	AccessKey string
	Secret    string
}

var _ credentials.PerRPCCredentials = Credentials{}

// GetRequestMetadata implements credentials.PerRPCCredentials.
func (c Credentials) GetRequestMetadata(ctx context.Context, _ ...string) (map[string]string, error) {
	ri, _ := credentials.RequestInfoFromContext(ctx)
	kv := Metadata(c.AccessKey, c.Secret, ri.Method, time.Now())
	return map[string]string{kv[0]: kv[1], kv[2]: kv[3], kv[4]: kv[5]}, nil
}

// RequireTransportSecurity implements credentials.PerRPCCredentials.
func (Credentials) RequireTransportSecurity() bool { return false }
