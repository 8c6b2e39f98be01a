package jsonscan

import (
	"bytes"
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
		// ValidMemberBounds agrees too, and its offsets are the members'.
		var bounds []string
		if got := ValidMemberBounds(b, func(m Member) { bounds = append(bounds, string(KeyName(m.Key))+"="+string(b[m.Start:m.End])) }); got != want {
			t.Fatalf("ValidMemberBounds(%q) = %v, json.Valid = %v", b, got, want)
		}
		if strings.Join(seen, "\x00") != strings.Join(bounds, "\x00") {
			t.Fatalf("ValidMembers(%q) saw %q, ValidMemberBounds %q", b, seen, bounds)
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

// hasNonNullKeyIndex is the search HasNonNullKey replaced (bytes.Index of
// the key without its leading quote), the reference of FuzzHasNonNullKey.
func hasNonNullKeyIndex(data []byte, quotedKey string) bool {
	tail := quotedKey[1:]
	off := 0
	for {
		j := bytes.Index(data[off:], []byte(tail))
		if j < 0 {
			return false
		}
		at := off + j
		off = at + 1
		if at == 0 || data[at-1] != '"' {
			continue
		}
		p := SkipWS(data, at+len(tail))
		if p < len(data) && data[p] == ':' {
			p = SkipWS(data, p+1)
			if p < len(data) && !bytes.HasPrefix(data[p:], []byte("null")) {
				return true
			}
		}
	}
}

var hasNonNullKeyCases = []struct {
	in, key string
	want    bool
}{
	{`{"usage":{"a":1}}`, `"usage"`, true},
	{`{"usage" : null}`, `"usage"`, false},
	{`{"x":"usage"}`, `"usage"`, false},
	{`{"nested":{"usage":1}}`, `"usage"`, true},
	{`{}`, `"usage"`, false},
	{`"usage":1`, `"usage"`, true},                                 // the key at the very start
	{`{"x":1,"usage"`, `"usage"`, false},                           // at the very end, no colon
	{`{"usage":`, `"usage"`, false},                                // no value
	{`{"usage":n}`, `"usage"`, true},                               // not null (not JSON either)
	{`{"usage":null,"usage":0}`, `"usage"`, true},                  // the second one
	{`{"usages":1,"usage":null}`, `"usage"`, false},                // a longer key is not the key
	{`{"xusage":1}`, `"usage"`, false},                             // nor a key ending with it
	{`{"t":"\"usage\": 1"}`, `"usage"`, false},                     // escaped quotes in text
	{`{"gggg":"usage","usage"` + "\t:\n" + `[]}`, `"usage"`, true}, // many anchor bytes, whitespace
	{`{"ggg":1}`, `"g"`, false},                                    // the anchor is the whole name
	{`{"g":2}`, `"g"`, true},
	{`{"":2}`, `""`, true},             // an empty name: the quote is the anchor
	{`{"a":"","b":null}`, `""`, false}, // "" as a value, then not before ':'
}

func TestHasNonNullKey(t *testing.T) {
	for _, tc := range hasNonNullKeyCases {
		if got := HasNonNullKey([]byte(tc.in), tc.key); got != tc.want {
			t.Errorf("HasNonNullKey(%s, %s) = %v, want %v", tc.in, tc.key, got, tc.want)
		}
		if got := hasNonNullKeyIndex([]byte(tc.in), tc.key); got != tc.want {
			t.Errorf("the reference on (%s, %s) = %v, want %v", tc.in, tc.key, got, tc.want)
		}
	}
}

func TestAnchor(t *testing.T) {
	for c := byte('a'); c <= 'z'; c++ {
		if r := int(letterRank[c-'a'] - 'a'); r != strings.IndexByte(letterFrequency, c) {
			t.Errorf("letterRank of %c is %d, letterFrequency says %d", c, r, strings.IndexByte(letterFrequency, c))
		}
	}
	for _, tc := range []struct {
		key  string
		want byte
	}{
		{`"usage"`, 'g'},
		{`"model"`, 'm'},
		{`"type"`, 'y'},
		{`"a"`, 'a'},
		{`"x_1"`, '_'}, // outside the table: rarer than any letter (first on a tie)
		{`""`, '"'},
	} {
		if got := tc.key[anchor(tc.key)]; got != tc.want {
			t.Errorf("anchor(%s) = %q, want %q", tc.key, got, tc.want)
		}
	}
}

// FuzzHasNonNullKey: the anchored search answers as the bytes.Index one.
func FuzzHasNonNullKey(f *testing.F) {
	for _, tc := range hasNonNullKeyCases {
		f.Add([]byte(tc.in), tc.key)
	}
	f.Fuzz(func(t *testing.T, data []byte, name string) {
		key := `"` + name + `"`
		if got, want := HasNonNullKey(data, key), hasNonNullKeyIndex(data, key); got != want {
			t.Fatalf("HasNonNullKey(%q, %q) = %v, bytes.Index search %v", data, key, got, want)
		}
	})
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

// KeyIs answers what decoding the key would, for escaped, shorter, longer
// and invalid keys.
func TestKeyIs(t *testing.T) {
	for _, raw := range []string{`"delta"`, `"delt"`, `"deltas"`, `"\u0064elta"`, `"d\u0065lt\u0061"`, `"\u0064\u0065\u006c\u0074\u0061"`,
		`"delta\u0000"`, `"\delta"`, `"del\ta"`, `"\"elta"`, `"DELTA"`, `""`, `"`, ``, `"d\u0065lt"`, "\"\xffelta\"", "\"d\xc3\xa9lta\"",
		`"\ud83d\ude00"`, `"de\/lta"`, `"\u00640elta"`, `"\u006"`} {
		for _, name := range []string{"delta", "delt", "d", "", "content"} {
			var s string
			want := len(raw) >= 2 && json.Unmarshal([]byte(raw), &s) == nil && s == name
			if got := KeyIs([]byte(raw), name); got != want {
				t.Errorf("KeyIs(%s, %q) = %v; decoding says %v", raw, name, got, want)
			}
		}
	}
}
