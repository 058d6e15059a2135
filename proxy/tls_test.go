package proxy_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/duomq/duomq/api/nameserverpb"
	"github.com/duomq/duomq/api/proxypb"
	"github.com/duomq/duomq/dr/meta"
	"github.com/duomq/duomq/proxy"
)

// staticMeta is metadata with DCs only.
type staticMeta struct{ dcs []meta.DC }

func (staticMeta) Topic(string) (meta.Topic, bool)            { return meta.Topic{}, false }
func (staticMeta) Group(string) (meta.Group, bool)            { return meta.Group{}, false }
func (staticMeta) Groups() []meta.Group                       { return nil }
func (staticMeta) Brokers(string) []meta.Alive                { return nil }
func (staticMeta) Placement(string) []meta.Slot               { return nil }
func (staticMeta) DC(string) (meta.DC, bool)                  { return meta.DC{}, false }
func (s staticMeta) DCs() []meta.DC                           { return s.dcs }
func (staticMeta) Ordered(string) (meta.Ordered, int64, bool) { return meta.Ordered{}, 0, false }
func (staticMeta) Traffic() (meta.Traffic, int64)             { return meta.Traffic{}, 0 }

// noRoutes routes every topic to no broker.
type noRoutes struct{}

func (noRoutes) Route(context.Context, string, string) (*nameserverpb.Route, time.Duration, error) {
	return &nameserverpb.Route{}, 0, nil
}

// TestTLS: with tls configured the proxy serves TLS only; with
// client-cert-auth a client without a certificate signed by the client CA
// is refused.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := newCA(t)
	writeCert(t, dir, "server", ca, caKey, false)
	writeCert(t, dir, "client", ca, caKey, true)
	os.WriteFile(filepath.Join(dir, "ca.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw}), 0o600)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	clientCert, err := tls.LoadX509KeyPair(filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := proxy.DefaultConfig()
	cfg.Nameservers = map[string][]string{cfg.DC: {"127.0.0.1:1"}}
	cfg.TLS = proxy.TLSConfig{CertFile: filepath.Join(dir, "server.pem"), KeyFile: filepath.Join(dir, "server-key.pem"),
		ClientCAFile: filepath.Join(dir, "ca.pem"), ClientCertAuth: true}
	addr := serveBare(t, cfg, staticMeta{dcs: []meta.DC{{Name: "idc-a", CIDRs: []string{"10.1.0.0/16"}}}})

	call := func(tc *tls.Config) error {
		cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(tc)))
		if err != nil {
			return err
		}
		defer cc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		res, err := proxypb.NewProxyClient(cc).ResolveIDC(ctx, &proxypb.ResolveIDCRequest{Addresses: []string{"10.1.2.3"}})
		if err == nil && res.Idc != "idc-a" {
			t.Fatalf("resolve over TLS: %v", res)
		}
		return err
	}
	if err := call(&tls.Config{RootCAs: pool, ServerName: "localhost", Certificates: []tls.Certificate{clientCert}}); err != nil {
		t.Fatalf("mTLS call: %v", err)
	}
	if err := call(&tls.Config{RootCAs: pool, ServerName: "localhost"}); err == nil {
		t.Fatal("call without a client certificate accepted")
	}
}

func serveBare(t *testing.T, cfg proxy.Config, md proxy.Metadata) string {
	t.Helper()
	p, err := proxy.New(cfg, proxy.Deps{Meta: md, Routes: map[string]proxy.Routes{cfg.DC: noRoutes{}}})
	if err != nil {
		t.Fatal(err)
	}
	opts, err := p.ServerOptions()
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(opts...)
	p.Register(s)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(l)
	t.Cleanup(func() { s.Stop(); p.Close() })
	return l.Addr().String()
}

func newCA(t *testing.T) (*x509.Certificate, *ecdsa.PrivateKey) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test ca"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return ca, key
}

func writeCert(t *testing.T, dir, name string, ca *x509.Certificate, caKey *ecdsa.PrivateKey, client bool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"localhost"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	if client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, name+".pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(filepath.Join(dir, name+"-key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
}
