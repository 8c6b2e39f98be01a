package events

import "testing"

func TestSubjectsShareThePrefix(t *testing.T) {
	s := Subjects{Prefix: "bench-a1.b2"}
	for _, got := range []string{s.TenantChanged(), s.TokensRevoked(), s.GlobalConfigChanged(), s.KeysChanged(), s.PoliciesChanged(), s.Usage()} {
		if got[:len(s.Prefix)+1] != s.Prefix+"." {
			t.Errorf("subject %q does not start with the prefix", got)
		}
	}
	// Stream names may not hold '.' or '-'.
	if got := s.UsageStream(); got != "BENCH_A1_B2_USAGE" {
		t.Errorf("UsageStream() = %q", got)
	}
}
