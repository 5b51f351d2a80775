package classifier

import "testing"

func TestSoundKey(t *testing.T) {
	for _, c := range [][2]string{{"seeker", "sicker"}, {"thrust", "trust"}, {"plate", "plait"}, {"phase", "faze"}, {"check", "chek"}} {
		if a, b := soundKey(c[0]), soundKey(c[1]); a != b || a == "" {
			t.Errorf("%q → %q, %q → %q: want equal keys", c[0], a, c[1], b)
		}
	}
	if soundKey("seeker") == soundKey("speaker") {
		t.Error("seeker and speaker share a key")
	}
}

// TestHomophoneAnchors: a multi-word anchor written as it sounds is an
// anchor, flagged as a homophone; an ordinary sentence gains none.
func TestHomophoneAnchors(t *testing.T) {
	e := engine(t)
	a := e.analyze("the micro channel plait pitch is six microns")
	found := false
	for _, h := range a.hits {
		found = found || h.p.kind == KindAnchor && h.span.Rule == "ear-6a002.anchor:microchannel_plate_pitch~sound"
	}
	if !found {
		t.Errorf("no homophone anchor in %v", a.hits)
	}
	for _, h := range e.analyze("please plate the dish and serve the trust fund report").hits {
		if h.p.kind == KindAnchor && len(h.span.Rule) > 6 && h.span.Rule[len(h.span.Rule)-6:] == "~sound" {
			t.Errorf("homophone anchor %s in an ordinary sentence", h.span.Rule)
		}
	}
}
