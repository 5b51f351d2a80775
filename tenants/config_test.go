package tenants

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestBrokenConfigs: each file under testdata/broken is refused with the
// lines in its .golden file (one subtest per file).
func TestBrokenConfigs(t *testing.T) {
	files, _ := filepath.Glob("testdata/broken/*.yaml")
	if len(files) == 0 {
		t.Fatal("no fixtures")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, err := Load(f)
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("got %v, want a *ConfigError", err)
			}
			got := err.Error() + "\n"
			golden := strings.TrimSuffix(f, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("got:\n%s\nwant:\n%s", got, want)
			}
			if strings.Contains(got, "plaintext-key") {
				t.Error("a secret-looking value was echoed")
			}
		})
	}
}

func TestExampleConfig(t *testing.T) {
	t.Setenv("VOICEGW_AUDIT_SALT", "salt")
	t.Setenv("VOICEGW_TOKEN_KEY", strings.Repeat("k", 32))
	t.Setenv("VLLM_KEY", "vllm-secret-value")
	c, err := Load("../examples/voicegw.yaml")
	if err != nil {
		t.Fatal(err)
	}
	llms := c.Route("acme-defense", "llm")
	if len(llms) != 1 || llms[0].Name != "vllm-gov" || llms[0].APIKey.Value() != "vllm-secret-value" {
		t.Errorf("llm backends %+v", llms)
	}
	if s := llms[0].APIKey.String(); strings.Contains(s, "vllm-secret-value") {
		t.Errorf("secret printed: %s", s)
	}
	if c.Tenant("acme-defense").Limits.MaxConcurrentCalls != 50 || c.Tenants[0].TokenTTL == 0 {
		t.Errorf("tenant %+v", c.Tenants[0])
	}
}

func FuzzParse(f *testing.F) {
	if b, err := os.ReadFile("../examples/voicegw.yaml"); err == nil {
		f.Add(b)
	}
	files, _ := filepath.Glob("testdata/broken/*.yaml")
	for _, p := range files {
		b, _ := os.ReadFile(p)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := Parse("fuzz.yaml", data)
		var ce *ConfigError
		if err != nil && !errors.As(err, &ce) {
			t.Fatalf("unclassified error %v", err)
		}
	})
}
