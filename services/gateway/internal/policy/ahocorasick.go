package policy

// acMatcher is an immutable Aho-Corasick automaton: it finds every
// occurrence of every pattern in one left-to-right pass over the text.
//
// Bytes are mapped to equivalence classes first (bytes that occur in no
// pattern share class 0; with case folding 'A' and 'a' share a class), so a
// full DFA transition table stays small: one table lookup per input byte.
// Automata whose table would exceed denseLimit entries fall back to sparse
// goto edges plus failure links (still linear, a little slower).
type acMatcher struct {
	class  [256]uint16
	nclass int

	// dense transitions, nil when sparse: entry = next state's row offset
	// (state*nclass) | acOut when that state has outputs.
	dense []uint32

	// sparse representation (used when dense == nil)
	edgeOff []int32 // state -> edges[edgeOff[s]:edgeOff[s+1]], sorted by class
	edges   []acEdge
	fail    []int32
	root    []int32 // root transitions, indexed by class

	outOff []int32 // state -> outs[outOff[s]:outOff[s+1]]
	outs   []int32 // pattern ids (own output first, then via suffix links)
	patLen []int32
}

type acEdge struct {
	class uint16
	next  int32
}

const acOut = 1 << 31

// denseLimit bounds the dense transition table (entries of 4 bytes); a
// variable so tests can force the sparse representation.
var denseLimit = 1 << 20

// newAC builds an automaton for patterns (non-empty). With fold, ASCII
// letters match case-insensitively.
func newAC(patterns []string, fold bool) *acMatcher {
	m := &acMatcher{patLen: make([]int32, len(patterns))}
	// Byte classes.
	n := 1
	for _, p := range patterns {
		for i := 0; i < len(p); i++ {
			c := p[i]
			if fold {
				c = lowerASCII(c)
			}
			if m.class[c] == 0 {
				m.class[c] = uint16(n)
				if fold && c >= 'a' && c <= 'z' {
					m.class[c-'a'+'A'] = uint16(n)
				}
				n++
			}
		}
	}
	m.nclass = n

	// Trie with sparse children.
	type tnode struct {
		kids []acEdge
		out  []int32
	}
	nodes := []tnode{{}}
	total := 1
	for pi, p := range patterns {
		m.patLen[pi] = int32(len(p))
		s := int32(0)
		for i := 0; i < len(p); i++ {
			c := m.class[p[i]]
			next := int32(-1)
			for _, e := range nodes[s].kids {
				if e.class == c {
					next = e.next
					break
				}
			}
			if next < 0 {
				next = int32(len(nodes))
				nodes = append(nodes, tnode{})
				nodes[s].kids = append(nodes[s].kids, acEdge{class: c, next: next})
				total++
			}
			s = next
		}
		nodes[s].out = append(nodes[s].out, int32(pi))
	}

	// Failure links, breadth first.
	fail := make([]int32, len(nodes))
	order := make([]int32, 0, len(nodes))
	goTo := func(s int32, c uint16) int32 {
		for {
			for _, e := range nodes[s].kids {
				if e.class == c {
					return e.next
				}
			}
			if s == 0 {
				return 0
			}
			s = fail[s]
		}
	}
	for _, e := range nodes[0].kids {
		fail[e.next] = 0
		order = append(order, e.next)
	}
	for qi := 0; qi < len(order); qi++ {
		s := order[qi]
		for _, e := range nodes[s].kids {
			fail[e.next] = goTo(fail[s], e.class)
			order = append(order, e.next)
		}
	}

	// Outputs: own patterns, then those of the failure chain.
	m.outOff = make([]int32, len(nodes)+1)
	for s := range nodes {
		m.outOff[s] = int32(len(m.outs))
		for t := int32(s); t != 0; t = fail[t] {
			m.outs = append(m.outs, nodes[t].out...)
		}
	}
	m.outOff[len(nodes)] = int32(len(m.outs))

	if total*n <= denseLimit {
		m.dense = make([]uint32, total*n)
		enc := func(s int32) uint32 {
			v := uint32(int(s) * n)
			if m.outOff[s] != m.outOff[s+1] {
				v |= acOut
			}
			return v
		}
		// Root row.
		for _, e := range nodes[0].kids {
			m.dense[e.class] = enc(e.next)
		}
		// BFS order guarantees fail[s] is filled before s.
		for _, s := range order {
			row := m.dense[int(s)*n : int(s)*n+n]
			copy(row, m.dense[int(fail[s])*n:int(fail[s])*n+n])
			for _, e := range nodes[s].kids {
				row[e.class] = enc(e.next)
			}
		}
		return m
	}

	m.fail = fail
	m.root = make([]int32, n)
	for _, e := range nodes[0].kids {
		m.root[e.class] = e.next
	}
	m.edgeOff = make([]int32, len(nodes)+1)
	for s := range nodes {
		m.edgeOff[s] = int32(len(m.edges))
		kids := nodes[s].kids
		// insertion sort by class (few kids per node)
		for i := 1; i < len(kids); i++ {
			for j := i; j > 0 && kids[j].class < kids[j-1].class; j-- {
				kids[j], kids[j-1] = kids[j-1], kids[j]
			}
		}
		m.edges = append(m.edges, kids...)
	}
	m.edgeOff[len(nodes)] = int32(len(m.edges))
	return m
}

// scan reports every (pattern, start, end) occurrence in text, in order of
// end position. fn returns false to stop the scan.
func (m *acMatcher) scan(text []byte, fn func(pat, start, end int) bool) {
	if m.dense != nil {
		d, cls := m.dense, &m.class
		v := uint32(0)
		for i, c := range text {
			v = d[v&^acOut+uint32(cls[c])]
			if v&acOut != 0 {
				s := int(v&^acOut) / m.nclass
				for _, p := range m.outs[m.outOff[s]:m.outOff[s+1]] {
					if !fn(int(p), i+1-int(m.patLen[p]), i+1) {
						return
					}
				}
			}
		}
		return
	}
	s := int32(0)
	for i := 0; i < len(text); i++ {
		c := m.class[text[i]]
		s = m.step(s, c)
		if m.outOff[s] != m.outOff[s+1] {
			for _, p := range m.outs[m.outOff[s]:m.outOff[s+1]] {
				if !fn(int(p), i+1-int(m.patLen[p]), i+1) {
					return
				}
			}
		}
	}
}

func (m *acMatcher) step(s int32, c uint16) int32 {
	for s != 0 {
		for _, e := range m.edges[m.edgeOff[s]:m.edgeOff[s+1]] {
			if e.class == c {
				return e.next
			}
			if e.class > c {
				break
			}
		}
		s = m.fail[s]
	}
	return m.root[c]
}

func lowerASCII(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
