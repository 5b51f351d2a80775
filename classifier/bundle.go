package classifier

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
)

// BundleFormat is the format tag of a bundle manifest this package reads.
const BundleFormat = "voicegw-classifier-bundle/1"

// The embedded default bundle: the rule pack, the lexicon derived from the
// control lists, the trained model and the manifest that pins them.
//
//go:embed packs/manifest.json packs/default.yaml packs/lexicon.yaml packs/model.json
var embedded embed.FS

// Bundle parts, by role.
const (
	RolePack    = "pack"
	RoleLexicon = "lexicon"
	RoleModel   = "model"
)

// Manifest lists a bundle's parts with their SHA-256. A detached
// signature over manifest.json covers the whole bundle.
type Manifest struct {
	Format  string         `json:"format"`
	Version string         `json:"version"`
	Files   []ManifestFile `json:"files"`
}

// ManifestFile is one part of a bundle.
type ManifestFile struct {
	Role   string `json:"role"`
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
}

// ErrBundle is wrapped by every bundle loading or validation error.
var ErrBundle = errors.New("invalid classifier bundle")

var (
	defaultOnce   sync.Once
	defaultEngine *Engine
	defaultErr    error
)

// Default returns the engine for the bundle embedded in the binary. It is
// compiled once; every call returns the same engine.
func Default() (*Engine, error) {
	defaultOnce.Do(func() {
		sub, err := fs.Sub(embedded, "packs")
		if err != nil {
			defaultErr = err
			return
		}
		defaultEngine, defaultErr = LoadBundle(sub, "embedded bundle")
	})
	return defaultEngine, defaultErr
}

// DefaultPack returns the YAML source of the embedded rule pack.
func DefaultPack() []byte {
	b, _ := embedded.ReadFile("packs/default.yaml")
	return b
}

// Load reads a classifier bundle (a directory holding manifest.json, or
// the manifest itself) or a bare rule pack YAML file, which is compiled
// with the embedded bundle's lexicon and model.
func Load(p string) (*Engine, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPack, err)
	}
	switch {
	case st.IsDir():
		return LoadBundle(os.DirFS(p), p)
	case filepath.Base(p) == "manifest.json":
		return LoadBundle(os.DirFS(filepath.Dir(p)), filepath.Dir(p))
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPack, err)
	}
	return Parse(p, b)
}

// Parse compiles a rule pack with the embedded bundle's lexicon and
// model; name is used in error messages. A pack that fails validation
// returns an error wrapping ErrPack that lists one *PackError per
// problem, each naming the file, line and field.
func Parse(name string, data []byte) (*Engine, error) {
	e, err := compilePack(name, data, "", nil)
	if err != nil {
		return nil, err
	}
	def, err := Default()
	if err != nil {
		return nil, err
	}
	e.model = def.model
	return e, nil
}

// LoadBundle reads and checks a bundle: the manifest, then every part
// against its SHA-256; the pack, the lexicon (optional) and the model are
// compiled together. name is used in error messages.
func LoadBundle(fsys fs.FS, name string) (*Engine, error) {
	parts, m, err := readBundle(fsys, name)
	if err != nil {
		return nil, err
	}
	e, err := compilePack(path.Join(name, parts[RolePack].path), parts[RolePack].data,
		path.Join(name, parts[RoleLexicon].path), parts[RoleLexicon].data)
	if err != nil {
		return nil, err
	}
	model, err := ParseModel(path.Join(name, parts[RoleModel].path), parts[RoleModel].data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBundle, err)
	}
	e.model = model
	e.version = m.Version
	return e, nil
}

// LoadBundleForTraining reads a bundle's pack and lexicon, checked like
// LoadBundle; the model may be missing or stale. The engine can extract
// features (Featurize) but not classify until a model is set.
func LoadBundleForTraining(dir string) (*Engine, error) {
	fsys := os.DirFS(dir)
	pack, lex := part{path: "default.yaml"}, part{path: "lexicon.yaml"}
	version := ""
	if b, err := fs.ReadFile(fsys, "manifest.json"); err == nil {
		m, err := parseManifest(dir, b)
		if err != nil {
			return nil, err
		}
		version = m.Version
		for _, f := range m.Files {
			switch f.Role {
			case RolePack:
				pack.path = f.Path
			case RoleLexicon:
				lex.path = f.Path
			}
		}
	}
	var err error
	if pack.data, err = fs.ReadFile(fsys, pack.path); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrBundle, dir, err)
	}
	if lex.data, err = fs.ReadFile(fsys, lex.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s: %w", ErrBundle, dir, err)
	}
	e, err := compilePack(filepath.Join(dir, pack.path), pack.data, filepath.Join(dir, lex.path), lex.data)
	if err != nil {
		return nil, err
	}
	if version != "" {
		e.version = version
	}
	return e, nil
}

type part struct {
	path string
	data []byte
}

func readBundle(fsys fs.FS, name string) (map[string]part, *Manifest, error) {
	b, err := fs.ReadFile(fsys, "manifest.json")
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %w", ErrBundle, name, err)
	}
	m, err := parseManifest(name, b)
	if err != nil {
		return nil, nil, err
	}
	parts := map[string]part{}
	for i, f := range m.Files {
		d, err := fs.ReadFile(fsys, f.Path)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %s: files[%d] (%s): %w", ErrBundle, name, i, f.Role, err)
		}
		sum := sha256.Sum256(d)
		if got := hex.EncodeToString(sum[:]); got != f.SHA256 {
			return nil, nil, fmt.Errorf("%w: %s: files[%d] %s: sha256 %s, manifest says %s", ErrBundle, name, i, f.Path, got, f.SHA256)
		}
		parts[f.Role] = part{f.Path, d}
	}
	return parts, m, nil
}

func parseManifest(name string, b []byte) (*Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %s/manifest.json: %w", ErrBundle, name, err)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s/manifest.json: %s", ErrBundle, name, fmt.Sprintf(format, args...))
	}
	if m.Format != BundleFormat {
		return nil, bad("format %q, want %q", m.Format, BundleFormat)
	}
	if strings.TrimSpace(m.Version) == "" {
		return nil, bad("version: required")
	}
	seen := map[string]bool{}
	for i, f := range m.Files {
		switch f.Role {
		case RolePack, RoleLexicon, RoleModel:
		default:
			return nil, bad("files[%d].role %q: want pack, lexicon or model", i, f.Role)
		}
		if seen[f.Role] {
			return nil, bad("files[%d].role %q: listed twice", i, f.Role)
		}
		seen[f.Role] = true
		if f.Path == "" || !fs.ValidPath(f.Path) || strings.Contains(f.Path, "/") {
			return nil, bad("files[%d].path %q: want a file name inside the bundle", i, f.Path)
		}
		if len(f.SHA256) != 64 || strings.Trim(f.SHA256, "0123456789abcdef") != "" {
			return nil, bad("files[%d].sha256: want 64 lower-case hex digits", i)
		}
	}
	for _, r := range []string{RolePack, RoleModel} {
		if !seen[r] {
			return nil, bad("no %s file", r)
		}
	}
	return &m, nil
}

// WriteManifest writes dir/manifest.json listing the given parts (role →
// file name in dir) with their SHA-256.
func WriteManifest(dir, version string, roles map[string]string) error {
	m := Manifest{Format: BundleFormat, Version: version}
	for _, r := range []string{RolePack, RoleLexicon, RoleModel} {
		p, ok := roles[r]
		if !ok {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, p))
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		m.Files = append(m.Files, ManifestFile{Role: r, Path: p, SHA256: hex.EncodeToString(sum[:])})
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "manifest.json"), append(b, '\n'), 0o644)
}

// WithModel returns a copy of the engine that scores with m.
func (e *Engine) WithModel(m *Model) *Engine {
	c := *e
	c.model = m
	return &c
}

// WithTrace returns a copy of the engine whose decisions carry a
// readable trace (Decision.Trace): the probability, each contribution
// with the text it came from, and the action's reason. For local use
// (voicegw classify --explain): the trace quotes the text.
func (e *Engine) WithTrace() *Engine {
	c := *e
	c.trace = true
	return &c
}

// Model returns the engine's model (nil for an engine loaded for
// training).
func (e *Engine) Model() *Model { return e.model }
