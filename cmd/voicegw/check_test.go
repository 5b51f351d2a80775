package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckCommand(t *testing.T) {
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"check", "--config", "../../tenants/testdata/broken/il5_tenant_il4_llm.yaml"}, nil, &out, &errb)
	want := "../../tenants/testdata/broken/il5_tenant_il4_llm.yaml:7: tenants[0].llm[0]: backend \"llm-il4\" is IL4; tenant \"acme\" requires IL5\n" +
		"../../tenants/testdata/broken/il5_tenant_il4_llm.yaml:7: tenants[0].llm: tenant \"acme\" has no compliant llm backend (one at IL5 or higher in region us-gov-west-1)\n"
	if code != 1 || out.String() != want {
		t.Errorf("broken config: exit %d\n%s\nwant:\n%s", code, out.String(), want)
	}

	t.Setenv("VOICEGW_AUDIT_SALT", "s")
	t.Setenv("VOICEGW_TOKEN_KEY", strings.Repeat("x", 40))
	t.Setenv("VLLM_KEY", "top-secret-vllm")
	t.Setenv("ACME_SIP_PASSWORD", "top-secret-sip")
	out.Reset()
	errb.Reset()
	// As shipped, the example's API keys are placeholders that must be
	// replaced.
	code = run(context.Background(), []string{"check", "--config", "../../examples/voicegw.yaml"}, nil, &out, &errb)
	if code != 1 || !strings.Contains(out.String(), `tenants[0].api_keys[0].hash: "sha256:CHANGE-ME-ops-2026" is a placeholder`) ||
		!strings.Contains(out.String(), "tenants[1].api_keys[0].hash: ") {
		t.Errorf("example config as shipped: exit %d %q %q", code, out.String(), errb.String())
	}
	example := exampleWithKeys(t)
	out.Reset()
	errb.Reset()
	code = run(context.Background(), []string{"check", "--config", example}, nil, &out, &errb)
	if code != 0 || out.String() != "ok: 2 tenants, 5 backends\n" || strings.Contains(out.String()+errb.String(), "top-secret") {
		t.Errorf("example config: exit %d %q %q", code, out.String(), errb.String())
	}

	// A missing secret is named, never its value.
	t.Setenv("VLLM_KEY", "")
	out.Reset()
	code = run(context.Background(), []string{"check", "--config", example}, nil, &out, &errb)
	if code != 1 || !strings.Contains(out.String(), "backends[1].api_key: environment variable VLLM_KEY is not set") {
		t.Errorf("missing secret: exit %d %q", code, out.String())
	}

	missing := filepath.Join(t.TempDir(), "none.yaml")
	out.Reset()
	if code := run(context.Background(), []string{"check", "--config", missing}, nil, &out, &errb); code != 1 || !strings.Contains(out.String(), "no such file") {
		t.Errorf("missing file: exit %d %q", code, out.String())
	}
	if code := run(context.Background(), []string{"check"}, nil, &out, &errb); code != 2 {
		t.Errorf("no --config: exit %d", code)
	}
	_ = os.Remove(missing)
}

// exampleWithKeys is the example config with API-key hashes in place of
// its placeholders, written to a file.
func exampleWithKeys(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../examples/voicegw.yaml")
	if err != nil {
		t.Fatal(err)
	}
	hash := func(k string) string {
		sum := sha256.Sum256([]byte(k))
		return "sha256:" + hex.EncodeToString(sum[:])
	}
	s := strings.NewReplacer("sha256:CHANGE-ME-ops-2026", hash("example-ops-key-0123456789abcdef"),
		"sha256:CHANGE-ME-lab-1", hash("example-lab-key-0123456789abcdef")).Replace(string(b))
	p := filepath.Join(t.TempDir(), "voicegw.yaml")
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
