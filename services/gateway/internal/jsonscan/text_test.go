package jsonscan

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestAppendUnquotedMatchesEncodingJSON(t *testing.T) {
	for _, lit := range []string{`""`, `"a"`, `"\u00e9\n\"\\\/"`, `"\ud83d\ude00 x"`, `"\ud83d"`, `"caf\u00E9"`, `"日本"`} {
		var want string
		if err := json.Unmarshal([]byte(lit), &want); err != nil {
			t.Fatal(err)
		}
		got, ok := AppendUnquoted(nil, []byte(lit))
		if !ok || string(got) != want {
			t.Errorf("AppendUnquoted(%s) = %q %v, want %q", lit, got, ok, want)
		}
	}
	for _, bad := range []string{`"`, `"\"`, `"\x"`, `"\u12"`, "\"a\nb\"", `abc`, `"a"b"`} {
		if _, ok := AppendUnquoted(nil, []byte(bad)); ok {
			t.Errorf("AppendUnquoted(%s) accepted", bad)
		}
	}
}

func FuzzQuoteRoundTrip(f *testing.F) {
	for _, s := range []string{"", "a\"b\\c\n\t\x01", "\u2028日本\xff", "sk-\u00e9"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, s []byte) {
		lit := AppendQuoted(nil, s)
		if !Valid(lit) {
			t.Fatalf("AppendQuoted(%q) = %s: not JSON", s, lit)
		}
		var std string
		if err := json.Unmarshal(lit, &std); err != nil {
			t.Fatal(err)
		}
		got, ok := AppendUnquoted(nil, lit)
		if !ok || string(got) != std && utf8.Valid(s) {
			t.Fatalf("round trip of %q: %q (std %q)", s, got, std)
		}
		if utf8.Valid(s) && std != string(s) {
			t.Fatalf("valid UTF-8 %q came back as %q", s, std)
		}
		// Any literal encoding/json accepts decodes the same way.
		if Valid(s) && len(s) > 0 && s[0] == '"' {
			var w string
			if json.Unmarshal(s, &w) == nil {
				g, ok := AppendUnquoted(nil, s)
				if !ok || strings.ToValidUTF8(string(g), "\uFFFD") != strings.ToValidUTF8(w, "\uFFFD") && utf8.Valid(g) {
					t.Fatalf("AppendUnquoted(%s) = %q, encoding/json %q", s, g, w)
				}
			}
		}
	})
}

func TestAppendUnquotedKeepsSplitRunes(t *testing.T) {
	a, _ := AppendUnquoted(nil, []byte("\"x\xe6\x97\""))
	b, _ := AppendUnquoted(a, []byte("\"\xa5y\""))
	if string(b) != "x日y" {
		t.Fatalf("joined %q", b)
	}
}
func TestStringSpecial(t *testing.T) {
	for c := 0; c < 256; c++ {
		for pos := 0; pos < 8; pos++ {
			b := []byte("abcdefgh")
			b[pos] = byte(c)
			x := uint64(0)
			for i := 7; i >= 0; i-- {
				x = x<<8 | uint64(b[i])
			}
			want := c == '"' || c == '\\' || c < 0x20
			if (stringSpecial(x) != 0) != want {
				t.Fatalf("byte %#x at %d: %v", c, pos, !want)
			}
		}
	}
}

func TestAppendEscapedMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain ascii text that is long enough", "quote\" back\\ nl\n tab\t cr\r bell\x07 del\x7f",
		"é ü 😀 \u2028", "bad \xff\xfe utf8", strings.Repeat("abcdefg\"", 5), "12345678\x01"} {
		got := string(AppendEscaped(nil, []byte(s)))
		var back string
		if err := json.Unmarshal([]byte(`"`+got+`"`), &back); err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		want, _ := json.Marshal(s) // encoding/json's own view of s (invalid UTF-8 -> U+FFFD)
		var wantBack string
		_ = json.Unmarshal(want, &wantBack)
		if back != wantBack {
			t.Errorf("%q: round trip %q, want %q", s, back, wantBack)
		}
	}
}

// The stream framing and the policy engine's redactions both write text
// back into JSON with AppendEscaped: U+2028 and U+2029 leave escaped (a
// JavaScript consumer reading the body as source must not see a line
// break inside a string), control bytes as \u00XX, invalid UTF-8 as \ufffd.
func TestAppendEscapedEscapesLineSeparators(t *testing.T) {
	for in, want := range map[string]string{
		"a\u2028b\u2029c": `a\u2028b\u2029c`,
		"tab\there\x01":   `tab\there\u0001`,
		"bad\xffbyte":     `bad\ufffdbyte`,
		"日本 \"q\" \\ end": `日本 \"q\" \\ end`,
	} {
		if got := string(AppendEscaped(nil, []byte(in))); got != want {
			t.Errorf("AppendEscaped(%q) = %s, want %s", in, got, want)
		}
	}
}
