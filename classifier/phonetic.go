package classifier

import (
	"strings"

	ahocorasick "github.com/BobuSumisu/aho-corasick"
)

// Homophones: ASR writes jargon it does not know as words that sound the
// same ("sicker head" for seeker head, "trust vector control", "micro
// channel plait"). Every anchor of two or more words also gets a sound
// key — consonants only, with the spellings that sound alike folded
// together (ph/f, ck/k/c/q, th/t, z/s, doubled letters once) — and the
// text's words are keyed the same way and matched in a second pass. Only
// multi-word anchors are keyed: one word alone collides too easily
// ("seeker", "soccer").

// soundKey is a word's sound key: its first letter, then its consonants
// with alike spellings folded. It returns "" for a word with no letters
// or digits.
func soundKey(w string) string { return string(appendSoundKey(nil, w)) }

// appendSoundKey appends w's sound key to dst.
func appendSoundKey(dst []byte, w string) []byte {
	last := byte(0)
	emit := func(c byte) {
		if c != last {
			dst = append(dst, c)
			last = c
		}
	}
	for i := 0; i < len(w); i++ {
		c := w[i]
		var next byte
		if i+1 < len(w) {
			next = w[i+1]
		}
		switch {
		case c >= '0' && c <= '9':
			emit(c)
			continue
		case c < 'a' || c > 'z':
			continue
		}
		if i == 0 && strings.IndexByte("aeiouy", c) >= 0 {
			emit('a')
			continue
		}
		switch c {
		case 'h', 'w':
			continue
		case 'a', 'e', 'i', 'o', 'u', 'y':
			last = 0 // a vowel separates repeated consonants
			continue
		case 'p':
			if next == 'h' {
				emit('f')
				i++
				continue
			}
			emit('p')
		case 't':
			if next == 'h' {
				i++
			}
			emit('t')
		case 'c':
			switch next {
			case 'e', 'i', 'y':
				emit('s')
			case 'k':
				emit('k')
				i++
			default:
				emit('k')
			}
		case 'q':
			emit('k')
		case 'x':
			emit('k')
			emit('s')
		case 'z':
			emit('s')
		case 'g':
			if next == 'h' {
				i++
				continue
			}
			emit('g')
		case 'k':
			if i == 0 && next == 'n' {
				continue
			}
			emit('k')
		case 'd':
			if next == 'g' {
				emit('j')
				i++
				continue
			}
			emit('d')
		default:
			emit(c)
		}
	}
	return dst
}

// phoneticIndex is the sound-key automaton of the multi-word anchors.
type phoneticIndex struct {
	trie     *ahocorasick.Trie
	patterns [][]int // sound-key pattern → phrase indexes
	words    []int   // sound-key pattern → number of words
}

// buildPhonetic keys every anchor term of two or more words.
func (c *compiler) buildPhonetic() {
	seen := map[string]int{}
	var keys []string
	idx := &phoneticIndex{}
	for ti, t := range c.terms {
		words := strings.Fields(t)
		if len(words) < 2 {
			continue
		}
		var anchors []int
		for _, pi := range c.e.patterns[ti] {
			if c.e.phrases[pi].kind == KindAnchor && c.e.phrases[pi].weight >= 2 {
				anchors = append(anchors, pi)
			}
		}
		if len(anchors) == 0 {
			continue
		}
		kw := make([]string, len(words))
		short := false
		for i, w := range words {
			kw[i] = soundKey(w)
			short = short || len(kw[i]) == 0
		}
		if short {
			continue
		}
		key := strings.Join(kw, " ")
		k, ok := seen[key]
		if !ok {
			k = len(keys)
			seen[key] = k
			keys = append(keys, key)
			idx.patterns = append(idx.patterns, nil)
			idx.words = append(idx.words, len(words))
		}
		idx.patterns[k] = append(idx.patterns[k], anchors...)
	}
	if len(keys) == 0 {
		return
	}
	b := ahocorasick.NewTrieBuilder()
	for _, k := range keys {
		b.AddString(" " + k + " ")
	}
	idx.trie = b.Build()
	c.e.phonetic = idx
}

// phoneticHits returns anchor matches by sound that are not already
// exact matches over the same tokens.
func (e *Engine) phoneticHits(toks []token, exact []hit) []hit {
	if e.phonetic == nil || len(toks) < 2 {
		return nil
	}
	keyed := make([]byte, 0, len(toks)*6)
	owner := make([]int32, 0, len(toks)*6)
	for i, t := range toks {
		keyed = append(keyed, ' ')
		owner = append(owner, int32(i))
		n := len(keyed)
		keyed = appendSoundKey(keyed, t.text)
		if len(keyed) == n {
			keyed = append(keyed, '_')
		}
		for range len(keyed) - n {
			owner = append(owner, int32(i))
		}
	}
	keyed = append(keyed, ' ')
	owner = append(owner, int32(len(toks)))
	var out []hit
	e.phonetic.trie.Walk(keyed, func(end, n, pattern int64) bool {
		start := int(end - n + 1)
		first := int(owner[start+1])
		last := first + e.phonetic.words[pattern] - 1
		if last >= len(toks) {
			return true
		}
		for _, h := range exact {
			if h.p.kind == KindAnchor && h.first <= first && h.end > last {
				return true // already matched as written
			}
		}
		for _, pi := range e.phonetic.patterns[pattern] {
			p := &e.phrases[pi]
			out = append(out, hit{p: p, first: first, end: last + 1,
				span: Span{Start: toks[first].start, End: toks[last].end, Rule: p.rule + "~sound", Kind: KindAnchor}})
		}
		return true
	})
	return out
}
