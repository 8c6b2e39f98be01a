package textpath

import "testing"

func TestCompile(t *testing.T) {
	tr := Compile([]Spec{
		{"messages[]", Msg},
		{"messages[].content", Text},
		{"messages[].content[].text", Text},
		{"tool.response", Text | Deep},
		{"[].x", Text},
	}, []Spec{{"messages[].role", Role}})
	msgs := tr.Child(0, []byte("messages"))
	if msgs < 0 || tr.Flags(msgs) != 0 {
		t.Fatalf("messages node %d flags %v", msgs, tr.Flags(msgs))
	}
	el := tr.Elem(msgs)
	if el < 0 || tr.Flags(el) != Msg || tr.Name(el) != "messages" {
		t.Fatalf("element node: %d %v %q", el, tr.Flags(el), tr.Name(el))
	}
	if r := tr.Child(el, []byte("role")); r < 0 || tr.Flags(r) != Role {
		t.Fatal("second list not merged")
	}
	c := tr.Child(el, []byte("content"))
	if tr.Flags(c) != Text || tr.Elem(c) < 0 || tr.Flags(tr.Child(tr.Elem(c), []byte("text"))) != Text {
		t.Fatal("content paths")
	}
	if tr.Child(el, []byte("other")) != -1 || tr.Elem(tr.Child(el, []byte("role"))) != -1 {
		t.Fatal("unknown members must be -1")
	}
	deep := tr.Child(tr.Child(0, []byte("tool")), []byte("response"))
	if tr.Child(deep, []byte("anything")) != deep || tr.Elem(deep) != deep {
		t.Fatal("deep node must match every member and element")
	}
	if top := tr.Elem(0); top < 0 || tr.Flags(tr.Child(top, []byte("x"))) != Text {
		t.Fatal("top-level array path")
	}
}
