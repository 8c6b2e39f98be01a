package billing

import (
	"errors"
	"reflect"
	"testing"
)

var (
	free = Plan{ID: "free", MaxMembers: 3, MaxAPIKeys: 3, RetentionDays: 7}
	pro  = Plan{ID: "pro", MaxMembers: 25, MaxAPIKeys: 50, RetentionDays: 30, PriceUSDMonth: 49}
)

func limits(planID string, ex ...LimitExceeded) error {
	if len(ex) == 0 {
		return nil
	}
	return &LimitError{PlanID: planID, Exceeded: ex}
}

func sameLimitError(got, want error) bool {
	if want == nil || got == nil {
		return got == nil && want == nil
	}
	var g, w *LimitError
	return errors.As(got, &g) && errors.As(want, &w) && reflect.DeepEqual(g, w)
}

func TestCheckMembers(t *testing.T) {
	tests := []struct {
		name            string
		members, adding int64
		want            error
	}{
		{"invite into a free seat", 1, 1, nil},
		{"invite into the last seat", 2, 1, nil},
		{"invite when full", 3, 1, limits("free", LimitExceeded{LimitMembers, 3, 3})},
		{"switch with members at the limit", 3, 0, nil},
		{"switch with members above the limit", 4, 0, limits("free", LimitExceeded{LimitMembers, 3, 4})},
		{"empty tenant", 0, 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CheckMembers(free, tt.members, tt.adding); !sameLimitError(got, tt.want) {
				t.Errorf("CheckMembers(free, %d, %d) = %v, want %v", tt.members, tt.adding, got, tt.want)
			}
		})
	}
}

func TestNeedsKeyCount(t *testing.T) {
	for _, tt := range []struct {
		cur, target Plan
		want        bool
	}{{free, pro, false}, {pro, free, true}, {pro, pro, false}, {pro, Plan{MaxAPIKeys: 50, MaxMembers: 1}, false}} {
		if got := NeedsKeyCount(tt.cur, tt.target); got != tt.want {
			t.Errorf("NeedsKeyCount(%s → %s) = %v, want %v", tt.cur.ID, tt.target.ID, got, tt.want)
		}
	}
}

func TestCheckFits(t *testing.T) {
	n := func(v int64) *int64 { return &v }
	tests := []struct {
		name    string
		members int64
		keys    *int64
		want    error
	}{
		{"fits", 3, n(3), nil},
		{"keys not counted", 3, nil, nil},
		{"too many keys", 1, n(5), limits("free", LimitExceeded{LimitAPIKeys, 3, 5})},
		{"too many members", 4, n(3), limits("free", LimitExceeded{LimitMembers, 3, 4})},
		{"both, members first", 4, n(5), limits("free", LimitExceeded{LimitMembers, 3, 4}, LimitExceeded{LimitAPIKeys, 3, 5})},
		{"members, keys not counted", 9, nil, limits("free", LimitExceeded{LimitMembers, 3, 9})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CheckFits(free, tt.members, tt.keys); !sameLimitError(got, tt.want) {
				t.Errorf("CheckFits = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCheckSwitch(t *testing.T) {
	for _, tt := range []struct {
		name string
		cur  Plan
		from string
		to   Plan
		want error
	}{
		{"as seen", free, "free", pro, nil},
		{"moved to the target meanwhile", pro, "free", pro, ErrAlreadyOnPlan},
		{"moved elsewhere meanwhile", Plan{ID: "enterprise"}, "free", pro, ErrPlanChanged},
	} {
		if got := checkSwitch(tt.cur, tt.from, tt.to); !errors.Is(got, tt.want) || tt.want == nil && got != nil {
			t.Errorf("%s: checkSwitch = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestLimitErrorMessage(t *testing.T) {
	err := limits("free", LimitExceeded{LimitMembers, 3, 4}, LimitExceeded{LimitAPIKeys, 3, 5})
	if got, want := err.Error(), "plan free limits exceeded: max_members 4 > 3, max_api_keys 5 > 3"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
