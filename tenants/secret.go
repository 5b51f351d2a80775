package tenants

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

// maxSecretBytes bounds a secret file.
const maxSecretBytes = 64 << 10

// Secret is a value given by reference: "env:NAME" (an environment
// variable) or "file:/path" (a file's contents, surrounding whitespace
// trimmed). References are resolved at load; a missing or empty one is a
// config error. The value is never printed: String, GoString, MarshalJSON,
// MarshalYAML and LogValue show only the reference.
type Secret struct {
	// Ref is the reference as written.
	Ref   string
	value string
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (s *Secret) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %v", n.Line, errSecretRef)}}
	}
	s.Ref = n.Value
	return nil
}

// Value is the resolved secret ("" when not set).
func (s Secret) Value() string { return s.value }

// IsSet reports whether a reference was given.
func (s Secret) IsSet() bool { return s.Ref != "" }

// String shows the reference kind and name, never the value.
func (s Secret) String() string {
	switch {
	case s.Ref == "":
		return ""
	case strings.HasPrefix(s.Ref, "env:"), strings.HasPrefix(s.Ref, "file:"):
		return "[secret " + s.Ref + "]"
	}
	return "[secret]"
}

// GoString keeps %#v from printing the value.
func (s Secret) GoString() string { return s.String() }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalJSON implements json.Marshaler without the value.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// MarshalYAML keeps the reference, never the value.
func (s Secret) MarshalYAML() (any, error) { return s.Ref, nil }

// resolve reads the referenced value. Its errors never contain the value.
func (s *Secret) resolve() error {
	switch {
	case s.Ref == "":
		return nil
	case strings.HasPrefix(s.Ref, "env:"):
		name := strings.TrimPrefix(s.Ref, "env:")
		if name == "" {
			return errors.New("env: needs a variable name")
		}
		v, ok := os.LookupEnv(name)
		if !ok || v == "" {
			return fmt.Errorf("environment variable %s is not set", name)
		}
		s.value = v
	case strings.HasPrefix(s.Ref, "file:"):
		path := strings.TrimPrefix(s.Ref, "file:")
		if path == "" {
			return errors.New("file: needs a path")
		}
		b, err := readRegular(path, maxSecretBytes)
		if err != nil {
			return fmt.Errorf("cannot read secret file: %w", err)
		}
		s.value = strings.TrimSpace(string(b))
		if s.value == "" {
			return fmt.Errorf("secret file %s is empty", path)
		}
	default:
		return errSecretRef
	}
	return nil
}

var (
	_ slog.LogValuer = Secret{}
	_ json.Marshaler = Secret{}
	_ fmt.GoStringer = Secret{}
)
