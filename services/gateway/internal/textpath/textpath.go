// Package textpath describes where a provider's JSON bodies carry text: a
// small trie of member paths ("messages[].content[].text") with flags saying
// what the strings found there are. Provider packages declare their paths;
// the policy engine walks a body along the compiled trie to extract (and
// later redact in place) exactly the prompt and completion text.
package textpath

import "strings"

// Flag says what the values at a path are.
type Flag uint8

// Path flags.
const (
	Text   Flag = 1 << iota // string values here are text
	System                  // ... authored by the tenant (system prompt / instructions)
	Msg                     // objects here are messages with a "role"
	Role                    // string value is the role of the enclosing message
	Model                   // top-level model name
	MaxOut                  // requested output-token cap
	Deep                    // every string value in this subtree is text
)

// Spec is one path: member names joined by ".", "[]" after a name for the
// elements of an array ("[]" alone at the start for a top-level array).
type Spec struct {
	Path  string
	Flags Flag
}

type node struct {
	name  string
	keys  []string
	kids  []int32
	elem  int32 // node for array elements, -1 none
	flags Flag
}

// Trie is a compiled set of paths; node 0 is the root. It is immutable and
// safe for concurrent use.
type Trie struct{ nodes []node }

// Compile builds the trie of one or more lists of specs.
func Compile(specs ...[]Spec) *Trie {
	t := &Trie{nodes: []node{{elem: -1}}}
	for _, list := range specs {
		for _, sp := range list {
			n := int32(0)
			for _, part := range strings.Split(sp.Path, ".") {
				name := part
				arrays := 0
				for strings.HasSuffix(name, "[]") {
					name = name[:len(name)-2]
					arrays++
				}
				if name != "" {
					n = t.key(n, name)
				}
				for ; arrays > 0; arrays-- {
					if t.nodes[n].elem < 0 && t.nodes[n].flags&Deep == 0 {
						t.nodes = append(t.nodes, node{name: t.nodes[n].name, elem: -1})
						t.nodes[n].elem = int32(len(t.nodes) - 1)
					}
					n = t.nodes[n].elem
				}
			}
			t.nodes[n].flags |= sp.Flags
			if sp.Flags&Deep != 0 {
				t.nodes[n].elem = n
			}
		}
	}
	return t
}

func (t *Trie) key(n int32, name string) int32 {
	for i, k := range t.nodes[n].keys {
		if k == name {
			return t.nodes[n].kids[i]
		}
	}
	t.nodes = append(t.nodes, node{name: name, elem: -1})
	c := int32(len(t.nodes) - 1)
	t.nodes[n].keys = append(t.nodes[n].keys, name)
	t.nodes[n].kids = append(t.nodes[n].kids, c)
	return c
}

// Child returns the node of member key below node n, or -1. Below a Deep
// node every member is the node itself.
func (t *Trie) Child(n int32, key []byte) int32 {
	nd := &t.nodes[n]
	if nd.flags&Deep != 0 {
		return n
	}
	for i, k := range nd.keys {
		if k == string(key) {
			return nd.kids[i]
		}
	}
	return -1
}

// Elem returns the node of the array elements at node n, or -1.
func (t *Trie) Elem(n int32) int32 { return t.nodes[n].elem }

// Flags returns node n's flags.
func (t *Trie) Flags(n int32) Flag { return t.nodes[n].flags }

// Name returns the member name of node n ("" for the root).
func (t *Trie) Name(n int32) string { return t.nodes[n].name }
