package classifier

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

// copyBundle writes the embedded bundle's files into a temporary
// directory.
func copyBundle(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"manifest.json", "default.yaml", "lexicon.yaml", "model.json"} {
		b, err := embedded.ReadFile("packs/" + name)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestBundleLoadsFromDirectoryAndManifest(t *testing.T) {
	dir := copyBundle(t)
	def := engine(t)
	for _, p := range []string{dir, filepath.Join(dir, "manifest.json")} {
		e, err := Load(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if e.Version() != def.Version() || e.Model().Version() != def.Model().Version() {
			t.Errorf("%s: versions %s/%s, embedded %s/%s", p, e.Version(), e.Model().Version(), def.Version(), def.Model().Version())
		}
		text := "Gyro drifts 0.01 deg/hr."
		if a, b := e.Classify(text, PartyUnknown, Outbound), def.Classify(text, PartyUnknown, Outbound); a.Score != b.Score || a.Action != b.Action {
			t.Errorf("%s: %s %g, embedded %s %g", p, a.Action, a.Score, b.Action, b.Score)
		}
	}
}

// TestBundleRefusesBadParts: every way a bundle can be wrong is refused
// with an error that names the file and what is wrong.
func TestBundleRefusesBadParts(t *testing.T) {
	base := map[string][]byte{}
	for _, name := range []string{"manifest.json", "default.yaml", "lexicon.yaml", "model.json"} {
		b, err := embedded.ReadFile("packs/" + name)
		if err != nil {
			t.Fatal(err)
		}
		base[name] = b
	}
	for _, c := range []struct {
		name   string
		change func(m map[string][]byte)
		want   string
	}{
		{"tampered model", func(m map[string][]byte) {
			m["model.json"] = bytes.Replace(m["model.json"], []byte(`"redact": 0.`), []byte(`"redact": 0.0`), 1)
		}, "model.json: sha256"},
		{"tampered pack", func(m map[string][]byte) { m["default.yaml"] = append(m["default.yaml"], '\n') }, "default.yaml: sha256"},
		{"missing lexicon", func(m map[string][]byte) { delete(m, "lexicon.yaml") }, "(lexicon)"},
		{"no manifest", func(m map[string][]byte) { delete(m, "manifest.json") }, "manifest.json"},
		{"bad format", func(m map[string][]byte) {
			m["manifest.json"] = bytes.Replace(m["manifest.json"], []byte("bundle/1"), []byte("bundle/9"), 1)
		}, `format "voicegw-classifier-bundle/9"`},
		{"unknown role", func(m map[string][]byte) {
			m["manifest.json"] = bytes.Replace(m["manifest.json"], []byte(`"role": "lexicon"`), []byte(`"role": "weights"`), 1)
		}, `role "weights"`},
		{"path outside", func(m map[string][]byte) {
			m["manifest.json"] = bytes.Replace(m["manifest.json"], []byte(`"path": "lexicon.yaml"`), []byte(`"path": "../lexicon.yaml"`), 1)
		}, `path "../lexicon.yaml"`},
		{"unknown field", func(m map[string][]byte) {
			m["manifest.json"] = bytes.Replace(m["manifest.json"], []byte(`"format"`), []byte(`"signed": true, "format"`), 1)
		}, `unknown field "signed"`},
		{"not json", func(m map[string][]byte) { m["manifest.json"] = []byte("{") }, "manifest.json"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := map[string][]byte{}
			for k, v := range base {
				m[k] = v
			}
			c.change(m)
			fsys := fstest.MapFS{}
			for k, v := range m {
				fsys[k] = &fstest.MapFile{Data: v}
			}
			_, err := LoadBundle(fsys, "b")
			if err == nil || !errors.Is(err, ErrBundle) && !errors.Is(err, ErrPack) && !errors.Is(err, ErrModel) {
				t.Fatalf("err %v, want a bundle error", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q lacks %q", err, c.want)
			}
		})
	}
}

func TestParseModelRefusesBadModels(t *testing.T) {
	good, err := embedded.ReadFile("packs/model.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ old, new, want string }{
		{`"format": "voicegw-classifier-model/1"`, `"format": "x"`, "format"},
		{`"hash_bits": 16`, `"hash_bits": 40`, "hash_bits"},
		{`"hash_bits": 16`, `"hash_bits": 15`, "bytes, want"},
		{`"redact": 0.`, `"redact": 1.`, "thresholds.redact"},
		{`"accumulator": 0.8`, `"accumulator": 0`, "thresholds.accumulator"},
		{`"hashed": "`, `"hashed": "!!`, "hashed"},
	} {
		bad := strings.Replace(string(good), c.old, c.new, 1)
		if bad == string(good) {
			t.Fatalf("%q not in model.json", c.old)
		}
		if _, err := ParseModel("m.json", []byte(bad)); !errors.Is(err, ErrModel) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s → %s: err %v, want one naming %q", c.old, c.new, err, c.want)
		}
	}
}

func FuzzLoadBundle(f *testing.F) {
	man, _ := embedded.ReadFile("packs/manifest.json")
	model, _ := embedded.ReadFile("packs/model.json")
	f.Add(man, model[:200])
	f.Add([]byte(`{"format":"voicegw-classifier-bundle/1","version":"x","files":[]}`), []byte("{}"))
	f.Add([]byte("{"), []byte(`{"format":"voicegw-classifier-model/1"}`))
	pack, _ := embedded.ReadFile("packs/default.yaml")
	f.Fuzz(func(t *testing.T, manifest, modelJSON []byte) {
		fsys := fstest.MapFS{"manifest.json": {Data: manifest}, "default.yaml": {Data: pack}, "model.json": {Data: modelJSON}}
		if _, err := LoadBundle(fsys, "fuzz"); err != nil && !errors.Is(err, ErrBundle) && !errors.Is(err, ErrPack) && !errors.Is(err, ErrModel) {
			t.Fatalf("unclassified error: %v", err)
		}
		if m, err := ParseModel("fuzz", modelJSON); err == nil {
			e := engine(t).WithModel(m)
			d := e.Classify("Torque the TVC actuator bolts to 45 in-lb.", PartyUnknown, Outbound)
			if d.Score < 0 || d.Score > 1 {
				t.Fatalf("score %g", d.Score)
			}
		} else if !errors.Is(err, ErrModel) {
			t.Fatalf("unclassified model error: %v", err)
		}
	})
}
