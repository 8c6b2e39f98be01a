package jsonscan

import (
	"encoding/json"
	"strings"
	"testing"
)

func FuzzValid(f *testing.F) {
	for _, s := range []string{`{}`, `[]`, `{"a":[1,2,{"b":null}]}`, `"\u00e9"`, `1e5`, `-0.5`, `{"a":}`, `[1,]`, `01`, `"\x"`, `{"a":1}x`, ``, ` `, `tru`, ` {"a" : {"b":{}} , "c":[] ,"d":"x\\"y"} `, `{"a":1,"a":{"u":2}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		want := json.Valid(b)
		if got := Valid(b); got != want {
			t.Fatalf("Valid(%q) = %v, json.Valid = %v", b, got, want)
		}
		// ValidMembers agrees with Valid, and on a valid object it sees
		// the members EachMember sees.
		var seen, each []string
		if got := ValidMembers(b, func(k, v []byte) { seen = append(seen, string(KeyName(k))+"="+string(v)) }); got != want {
			t.Fatalf("ValidMembers(%q) = %v, json.Valid = %v", b, got, want)
		}
		if want {
			EachMember(b, func(k, v []byte) { each = append(each, string(k)+"="+string(v)) })
			if strings.Join(seen, "\x00") != strings.Join(each, "\x00") {
				t.Fatalf("ValidMembers(%q) saw %q, EachMember %q", b, seen, each)
			}
		}
	})
}

func TestEachMember(t *testing.T) {
	var keys []string
	EachMember([]byte(` {"a":1, "b\u0063":[1,{"x":2}], "d":"s"} `), func(k, v []byte) { keys = append(keys, string(k)+"="+string(v)) })
	want := []string{"a=1", `bc=[1,{"x":2}]`, `d="s"`}
	if len(keys) != len(want) {
		t.Fatalf("got %q", keys)
	}
	for i := range want {
		if keys[i] != want[i] {
			t.Fatalf("got %q want %q", keys, want)
		}
	}
	EachMember([]byte(`[1]`), func(k, v []byte) { t.Fatal("array yielded a member") })
}

func TestHasNonNullKey(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{`{"usage":{"a":1}}`, true},
		{`{"usage" : null}`, false},
		{`{"x":"usage"}`, false},
		{`{"nested":{"usage":1}}`, true},
		{`{}`, false},
	} {
		if got := HasNonNullKey([]byte(tc.in), `"usage"`); got != tc.want {
			t.Errorf("%s: got %v", tc.in, got)
		}
	}
}

func TestSplice(t *testing.T) {
	if got := string(Splice([]byte("abcdef"), 2, 4, "XYZ")); got != "abXYZef" {
		t.Fatal(got)
	}
}

// TestStringsWordBoundaries puts each byte that ends or breaks a string at
// every offset of a string longer than several 8-byte words, so that the
// word-at-a-time skipping of validString and skipString is checked at each
// position of a word against encoding/json.
func TestStringsWordBoundaries(t *testing.T) {
	specials := []string{`"`, `\"`, `\\`, `\n`, `\u00e9`, `\x`, "\x00", "\x1f", "\x7f", "\xc3\xa9", "\t", " "}
	for _, sp := range specials {
		for n := 0; n < 40; n++ {
			inner := strings.Repeat("a", n) + sp + strings.Repeat("b", 41-n)
			doc := `{"k":"` + inner + `","x":[1,{"y":"` + inner + `"}]}`
			if got, want := Valid([]byte(doc)), json.Valid([]byte(doc)); got != want {
				t.Fatalf("Valid(%q) = %v, json.Valid = %v", doc, got, want)
			}
			if !json.Valid([]byte(doc)) {
				continue
			}
			var keys []string
			EachMember([]byte(doc), func(k, v []byte) {
				keys = append(keys, string(k))
				if !json.Valid(v) {
					t.Fatalf("EachMember(%q): value %q of %q is not one JSON value", doc, v, k)
				}
			})
			if strings.Join(keys, ",") != "k,x" {
				t.Fatalf("EachMember(%q) keys = %v, want k,x", doc, keys)
			}
		}
	}
}
