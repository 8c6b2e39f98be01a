package role

import "testing"

func TestAtLeast(t *testing.T) {
	tests := []struct {
		role, min string
		want      bool
	}{
		{"viewer", "viewer", true},
		{"viewer", "member", false},
		{"member", "viewer", true},
		{"member", "admin", false},
		{"admin", "member", true},
		{"admin", "owner", false},
		{"owner", "admin", true},
		{"owner", "owner", true},
		{"", "viewer", false},
		{"root", "viewer", false},
		{"Owner", "viewer", false}, // case matters: roles are stored lower-case
		{"owner", "", false},
		{"owner", "superuser", false},
	}
	for _, tt := range tests {
		if got := AtLeast(tt.role, tt.min); got != tt.want {
			t.Errorf("AtLeast(%q, %q) = %v, want %v", tt.role, tt.min, got, tt.want)
		}
	}
}

func TestOutranksAndValid(t *testing.T) {
	for i, a := range All {
		if !a.Valid() {
			t.Errorf("%s not valid", a)
		}
		for j, b := range All {
			if got, want := a.Outranks(b), i > j; got != want {
				t.Errorf("%s.Outranks(%s) = %v, want %v", a, b, got, want)
			}
		}
	}
	if Role("x").Outranks(Viewer) || Role("").Valid() {
		t.Error("unknown role ranks")
	}
}
