package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestCheckCommand(t *testing.T) {
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"check", "--config", "../../tenants/testdata/broken/il5_tenant_il4_llm.yaml"}, nil, &out, &errb)
	if code != 1 || !strings.Contains(out.String(), `tenants[0].llm[0]: backend "llm-il4" is IL4; tenant "acme" requires IL5`) {
		t.Errorf("broken config: %d %q %q", code, out.String(), errb.String())
	}
	t.Setenv("VOICEGW_AUDIT_SALT", "s")
	t.Setenv("VOICEGW_TOKEN_KEY", strings.Repeat("x", 40))
	t.Setenv("VLLM_KEY", "top-secret-vllm")
	out.Reset()
	code = run(context.Background(), []string{"check", "--config", "../../examples/voicegw.yaml"}, nil, &out, &errb)
	if code != 0 || out.String() != "ok: 1 tenants, 4 backends\n" || strings.Contains(out.String()+errb.String(), "top-secret") {
		t.Errorf("example config: %d %q %q", code, out.String(), errb.String())
	}
}
