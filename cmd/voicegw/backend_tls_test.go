package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/voicegw/voicegw/gateway/backends"
	"github.com/voicegw/voicegw/loadtest/sim"
	"github.com/voicegw/voicegw/tenants"
)

// testPKI is a private CA with a server certificate for 127.0.0.1 and a
// client certificate, written as PEM files.
type testPKI struct {
	dir                 string
	caFile              string
	server              tls.Certificate
	clientCert, clientK string
	pool                *x509.CertPool
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "voicegw test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	p := &testPKI{dir: dir, pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	write := func(name string, typ string, der []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	p.caFile = write("ca.pem", "CERTIFICATE", caDER)
	issue := func(serial int64, usage x509.ExtKeyUsage, ip net.IP) ([]byte, *ecdsa.PrivateKey) {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "voicegw test"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			ExtKeyUsage: []x509.ExtKeyUsage{usage}, KeyUsage: x509.KeyUsageDigitalSignature,
		}
		if ip != nil {
			tmpl.IPAddresses = []net.IP{ip}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, k
	}
	sDER, sKey := issue(2, x509.ExtKeyUsageServerAuth, net.IPv4(127, 0, 0, 1))
	p.server = tls.Certificate{Certificate: [][]byte{sDER}, PrivateKey: sKey}
	cDER, cKey := issue(3, x509.ExtKeyUsageClientAuth, nil)
	kDER, _ := x509.MarshalECPrivateKey(cKey)
	p.clientCert = write("client.pem", "CERTIFICATE", cDER)
	p.clientK = write("client-key.pem", "EC PRIVATE KEY", kDER)
	return p
}

// TestBackendTLS: a backend behind TLS with a private CA that requires a
// client certificate (mTLS) is reached, for LLM requests and for the
// realtime ASR socket, exactly when the config names the CA and the
// client certificate.
func TestBackendTLS(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, simURL, err := sim.Listen(ctx, "127.0.0.1:0", sim.Config{})
	if err != nil {
		t.Fatal(err)
	}
	target, _ := url.Parse(simURL)
	pki := newTestPKI(t)
	ts := httptest.NewUnstartedServer(httputil.NewSingleHostReverseProxy(target))
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{pki.server}, ClientCAs: pki.pool, ClientAuth: tls.RequireAndVerifyClientCert}
	ts.StartTLS()
	defer ts.Close()

	load := func(extra string) tenants.Backend {
		t.Helper()
		cfg, err := tenants.Parse("tls.yaml", []byte(`
backends:
  - {name: a, role: asr, url: "`+ts.URL+`", region: r, impact_level: IL5`+extra+`}
  - {name: l, role: llm, url: "`+ts.URL+`", region: r, impact_level: IL5`+extra+`}
  - {name: s, role: tts, url: "`+ts.URL+`", region: r, impact_level: IL5`+extra+`}
tenants:
  - {id: acme, impact_level: IL5, regions: [r], asr: [a], llm: [l], tts: [s]}
`))
		if err != nil {
			t.Fatal(err)
		}
		return cfg.Backends[1]
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	chat := func(b tenants.Backend) error {
		e, err := endpoint(b, log)
		if err != nil {
			return err
		}
		e.Timeout = 5 * time.Second
		s, err := backends.NewLLM(backends.LLMConfig{Endpoint: e}).Stream(ctx, backends.ChatRequest{
			Messages: []backends.Message{{Role: "user", Content: "hello over mTLS"}}, MaxTokens: 20})
		if err != nil {
			return err
		}
		defer s.Close()
		var reply strings.Builder
		for {
			d, err := s.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return err
			}
			reply.WriteString(d)
		}
		if !strings.Contains(reply.String(), "hello over mTLS") {
			return errors.New("unexpected reply " + reply.String())
		}
		return nil
	}
	full := load(`, ca_file: "` + pki.caFile + `", client_cert: "` + pki.clientCert + `", client_key: "` + pki.clientK + `"`)
	if err := chat(full); err != nil {
		t.Errorf("LLM with CA and client certificate: %v", err)
	}
	if err := chat(load(`, ca_file: "` + pki.caFile + `"`)); err == nil {
		t.Error("LLM without a client certificate was reached; the server requires one")
	}
	if err := chat(load("")); err == nil {
		t.Error("LLM reached without the private CA")
	}
	// The realtime ASR socket uses the same TLS settings.
	e, err := endpoint(full, log)
	if err != nil {
		t.Fatal(err)
	}
	e.Timeout = 5 * time.Second
	asr, err := backends.DialASR(ctx, backends.ASRConfig{Endpoint: e})
	if err != nil {
		t.Fatalf("realtime ASR over wss with mTLS: %v", err)
	}
	asr.Close()
}
