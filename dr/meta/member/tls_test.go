package member

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
	"strconv"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// testPKI writes a CA and a certificate for 127.0.0.1 signed by it, usable
// as server and client certificate.
func testPKI(t *testing.T) (ca, cert, key string, pool *x509.CertPool, pair tls.Certificate) {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "member"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, caCert, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(leafKey)
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ca, cert, key = write("ca.pem", "CERTIFICATE", caDER), write("cert.pem", "CERTIFICATE", leafDER), write("key.pem", "EC PRIVATE KEY", keyDER)
	pool = x509.NewCertPool()
	pool.AddCert(caCert)
	pair, err = tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	return ca, cert, key, pool, pair
}

func TestTLS(t *testing.T) {
	ca, cert, key, pool, pair := testPKI(t)
	files := TLSConfig{CertFile: cert, KeyFile: key, TrustedCAFile: ca, ClientCertAuth: true}
	cfg := singleConfig(t)
	cfg.ClientURL = "https://127.0.0.1:" + strconv.Itoa(freePort(t))
	cfg.PeerURL = "https://127.0.0.1:" + strconv.Itoa(freePort(t))
	cfg.InitialCluster = map[string]string{"idc-a": cfg.PeerURL}
	cfg.ClientTLS, cfg.PeerTLS = files, files
	m, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer m.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints: []string{m.ClientURL()}, DialTimeout: 2 * time.Second, Logger: zap.NewNop(),
		TLS: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if _, err := cli.Put(ctx, "k", "v"); err != nil {
		t.Fatalf("put over TLS: %v", err)
	}

	// Without a client certificate the member refuses the client.
	noCert, err := clientv3.New(clientv3.Config{
		Endpoints: []string{m.ClientURL()}, DialTimeout: time.Second, Logger: zap.NewNop(),
		TLS: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
	})
	if err == nil {
		defer noCert.Close()
		short, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if _, err := noCert.Put(short, "k", "v"); err == nil {
			t.Fatal("put without a client certificate succeeded")
		}
	}
}
