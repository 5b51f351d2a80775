package tenants

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// maxDepth bounds nesting in a config document.
const maxDepth = 32

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// checkShape walks the document against the type of out and reports, with
// exact field paths and lines, every unknown or duplicate key and every
// value of the wrong kind. The yaml decoder stops at its first such error
// and names only a line; this names the field and finds them all.
func checkShape(root *yaml.Node, out any) []Problem {
	s := shapeChecker{seen: map[shapeKey]bool{}}
	n := root
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return nil
		}
		n = n.Content[0]
	}
	s.check(n, reflect.TypeOf(out).Elem(), "", 0)
	return s.ps
}

type shapeKey struct {
	n *yaml.Node
	t reflect.Type
}

type shapeChecker struct {
	ps   []Problem
	seen map[shapeKey]bool // alias targets already checked, so aliases cost nothing twice
}

func (s *shapeChecker) add(path string, line int, msg string) {
	if path == "" {
		path = "(document)"
	}
	s.ps = append(s.ps, Problem{Path: path, Line: line, Msg: msg})
}

func (s *shapeChecker) check(n *yaml.Node, t reflect.Type, path string, depth int) {
	if depth > maxDepth {
		s.add(path, n.Line, "nested too deeply")
		return
	}
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			return
		}
		k := shapeKey{n.Alias, t}
		if s.seen[k] {
			return
		}
		s.seen[k] = true
		s.check(n.Alias, t, path, depth+1)
		return
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // null leaves the zero value
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			s.add(path, n.Line, stripLine(err))
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			s.add(path, n.Line, "must be a mapping of fields")
			return
		}
		s.checkFields(n, t, path, depth, map[string]bool{}, false)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			s.add(path, n.Line, "must be a list")
			return
		}
		for i, e := range n.Content {
			s.check(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i), depth+1)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			s.add(path, n.Line, "must be a mapping")
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				s.add(path, k.Line, "keys must be plain values")
				continue
			}
			s.check(v, t.Elem(), path+"."+k.Value, depth+1)
		}
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			s.add(path, n.Line, "must be a string")
		}
	case reflect.Bool:
		var v bool
		if n.Kind != yaml.ScalarNode || n.Decode(&v) != nil {
			s.add(path, n.Line, "must be true or false")
		}
	case reflect.Int:
		var v int
		if n.Kind != yaml.ScalarNode || n.Decode(&v) != nil {
			s.add(path, n.Line, "must be a whole number")
		}
	case reflect.Float64:
		var v float64
		if n.Kind != yaml.ScalarNode || n.Decode(&v) != nil {
			s.add(path, n.Line, "must be a number")
		}
	}
}

// checkFields checks a mapping's keys against struct t. Keys given
// explicitly win over keys merged in with "<<", as in YAML's merge; only
// an explicit key given twice is a problem.
func (s *shapeChecker) checkFields(n *yaml.Node, t reflect.Type, path string, depth int, seen map[string]bool, merged bool) {
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Value == "<<" && k.ShortTag() == "!!merge" {
			merges = append(merges, v)
			continue
		}
		p := k.Value
		if path != "" {
			p = path + "." + k.Value
		}
		f, ok := fieldByTag(t, k.Value)
		switch {
		case k.Kind != yaml.ScalarNode:
			s.add(path, k.Line, "keys must be plain names")
		case !ok:
			s.add(p, k.Line, "unknown field")
		case seen[k.Value] && merged:
			// Overridden by an explicit key or an earlier merge.
		case seen[k.Value]:
			s.add(p, k.Line, "given twice")
		default:
			seen[k.Value] = true
			s.check(v, f.Type, p, depth+1)
		}
	}
	for _, v := range merges {
		s.checkMerge(v, t, path, depth, seen)
	}
}

// checkMerge checks a "<<" merge: a mapping, an alias to one, or a list of
// them, whose keys join the enclosing mapping.
func (s *shapeChecker) checkMerge(v *yaml.Node, t reflect.Type, path string, depth int, seen map[string]bool) {
	if depth > maxDepth {
		s.add(path, v.Line, "nested too deeply")
		return
	}
	switch v.Kind {
	case yaml.AliasNode:
		if v.Alias != nil {
			s.checkMerge(v.Alias, t, path, depth+1, seen)
		}
	case yaml.MappingNode:
		s.checkFields(v, t, path, depth+1, seen, true)
	case yaml.SequenceNode:
		for _, e := range v.Content {
			s.checkMerge(e, t, path, depth+1, seen)
		}
	default:
		s.add(path, v.Line, "a << merge must name a mapping")
	}
}

func fieldByTag(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); tag == name && f.IsExported() {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// stripLine drops the decoder's "line N: " prefix from an error.
func stripLine(err error) string {
	msg := err.Error()
	if te, ok := errors.AsType[*yaml.TypeError](err); ok && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if _, m, ok := strings.Cut(rest, ": "); ok {
			return m
		}
	}
	return msg
}

// yamlProblem turns a parser or decoder error into a Problem, taking the
// line out of "yaml: line 3: …" or "line 3: …".
func yamlProblem(err error) Problem {
	msg := err.Error()
	if te, ok := errors.AsType[*yaml.TypeError](err); ok && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	p := Problem{Msg: "invalid YAML: " + msg}
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, m, ok := strings.Cut(rest, ": "); ok {
			if n, err := strconv.Atoi(num); err == nil {
				p.Line, p.Msg = n, "invalid YAML: "+m
			}
		}
	}
	return p
}

// nodeAt finds the value node at a field path like tenants[1].limits.burst.
func nodeAt(root *yaml.Node, path string) *yaml.Node {
	n, _, ok := walk(root, path)
	if !ok {
		return nil
	}
	return n
}

// lineOf finds the line of a field path or, when the field is absent, of
// its nearest enclosing field; 0 when not even the first part exists.
func lineOf(root *yaml.Node, path string) int {
	_, line, _ := walk(root, path)
	return line
}

func walk(root *yaml.Node, path string) (*yaml.Node, int, bool) {
	n := root
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return nil, 0, false
		}
		n = n.Content[0]
	}
	line := 0
	for _, part := range strings.Split(path, ".") {
		key, idx := part, -1
		if i := strings.IndexByte(part, '['); i >= 0 && strings.HasSuffix(part, "]") {
			key = part[:i]
			if v, err := strconv.Atoi(part[i+1 : len(part)-1]); err == nil {
				idx = v
			}
		}
		n = deref(n)
		if n.Kind != yaml.MappingNode {
			return nil, line, false
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				line = n.Content[i].Line
				next = n.Content[i+1]
				break
			}
		}
		if next == nil {
			return nil, line, false
		}
		n = deref(next)
		if idx >= 0 {
			if n.Kind != yaml.SequenceNode || idx >= len(n.Content) {
				return nil, line, false
			}
			n = deref(n.Content[idx])
			line = n.Line
		}
	}
	return n, line, true
}

func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < maxDepth; i++ {
		n = n.Alias
	}
	return n
}
