package jsonscan

import (
	"encoding/json"
	"testing"
)

func FuzzValid(f *testing.F) {
	for _, s := range []string{`{}`, `[]`, `{"a":[1,2,{"b":null}]}`, `"\u00e9"`, `1e5`, `-0.5`, `{"a":}`, `[1,]`, `01`, `"\x"`, `{"a":1}x`, ``, ` `, `tru`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := Valid(b), json.Valid(b); got != want {
			t.Fatalf("Valid(%q) = %v, json.Valid = %v", b, got, want)
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
