package quota

import (
	"context"
	"testing"
	"time"
)

type fixed map[string]int64

func (f fixed) CountSince(context.Context, time.Time) (map[string]int64, error) { return f, nil }

func TestMonthlyQuota(t *testing.T) {
	now := time.Date(2026, 11, 30, 23, 59, 0, 0, time.UTC)
	c := New(fixed{"t1": 8})
	if err := c.Sync(context.Background(), now); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if ok, _ := c.Allow("t1", 10, now); !ok {
			t.Fatalf("request %d refused under the cap", i)
		}
	}
	if ok, used := c.Allow("t1", 10, now); ok || used != 10 {
		t.Fatalf("over the cap: ok=%v used=%d", ok, used)
	}
	if ok, _ := c.Allow("t2", 10, now); !ok {
		t.Fatal("another tenant refused")
	}
	// A new calendar month (UTC) starts from zero.
	if ok, used := c.Allow("t1", 10, now.Add(2*time.Minute)); !ok || used != 1 {
		t.Fatalf("new month: ok=%v used=%d", ok, used)
	}
	if ok, _ := c.Allow("t1", 0, now); !ok {
		t.Fatal("no limit refused")
	}
}
