package auth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"google.golang.org/grpc/credentials"
)

func TestSign(t *testing.T) {
	m := hmac.New(sha256.New, []byte("secret"))
	m.Write([]byte("AK\n1700000000000\n/duomq.proxy.v1.Proxy/Send"))
	want := hex.EncodeToString(m.Sum(nil))
	if got := Sign("secret", "AK", "1700000000000", "/duomq.proxy.v1.Proxy/Send"); got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
	if !Verify("secret", "AK", "1700000000000", "/duomq.proxy.v1.Proxy/Send", want) {
		t.Fatal("Verify refused its own signature")
	}
	for _, bad := range [][4]string{
		{"other", "AK", "1700000000000", "/duomq.proxy.v1.Proxy/Send"},
		{"secret", "AK2", "1700000000000", "/duomq.proxy.v1.Proxy/Send"},
		{"secret", "AK", "1700000000001", "/duomq.proxy.v1.Proxy/Send"},
		{"secret", "AK", "1700000000000", "/duomq.proxy.v1.Proxy/Receive"},
	} {
		if Verify(bad[0], bad[1], bad[2], bad[3], want) {
			t.Fatalf("Verify accepted %v", bad)
		}
	}
}

func TestCredentials(t *testing.T) {
	c := Credentials{AccessKey: "AK", Secret: "s"}
	ctx := credentials.NewContextWithRequestInfo(context.Background(), credentials.RequestInfo{Method: "/duomq.proxy.v1.Proxy/Ack"})
	md, err := c.GetRequestMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if md[MDAccessKey] != "AK" || !Verify("s", "AK", md[MDTimestamp], "/duomq.proxy.v1.Proxy/Ack", md[MDSignature]) {
		t.Fatalf("metadata %v", md)
	}
	kv := Metadata("AK", "s", "/m", time.UnixMilli(42))
	if kv[3] != "42" || kv[5] != Sign("s", "AK", "42", "/m") {
		t.Fatalf("Metadata = %v", kv)
	}
}
