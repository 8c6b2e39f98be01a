package configs

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
	"trueportai/services/internal/egress"

	"trueportai/services/platform-backend/internal/audit"
	"trueportai/services/platform-backend/internal/billing"
)

func TestLookup(t *testing.T) {
	for key, want := range map[string]bool{
		"providers.openai.api_key": true, "providers.azure.base_url": true, "gateway.default_rpm": true, "gateway.allowed_models": true,
		"providers.mistral.api_key": false, "gateway.DEFAULT_RPM": false, "": false, "providers.openai": false,
		"providers.bedrock.region": true, "providers.bedrock.access_key_id": true, "providers.bedrock.secret_access_key": true,
		"providers.compat.groq.base_url": true, "providers.compat.vllm-1.api_key": true, "providers.compat.groq.region": false,
		"providers.compat.Groq.base_url": false, "providers.compat..base_url": false, "providers.compat.a.b.base_url": false,
		"providers.compat.-x.api_key": false, "providers.compat.groq": false,
	} {
		if _, ok := Lookup(key); ok != want {
			t.Errorf("Lookup(%q) ok = %v, want %v", key, ok, want)
		}
	}
	for _, k := range []string{"providers.openai.api_key", "providers.compat.groq.api_key", "providers.bedrock.secret_access_key", "providers.bedrock.access_key_id"} {
		if d, _ := Lookup(k); !d.Secret {
			t.Errorf("%s must be secret", k)
		}
	}
}

func TestNormalize(t *testing.T) {
	tests := []struct {
		key, raw string
		want     string // canonical form; "" when refused
		wantErr  string
	}{
		{"providers.openai.api_key", `"  sk-abc  "`, "sk-abc", ""}, // secret: the plain string, trimmed
		{"providers.openai.api_key", `""`, "", "non-empty string"},
		// Control characters and invalid UTF-8 in a credential (it becomes an
		// upstream header) are refused, naming the key; outer whitespace is
		// trimmed as before.
		{"providers.openai.api_key", `"sk-abc\r\nX-Injected: 1"`, "", "providers.openai.api_key must not contain control characters"},
		{"providers.openai.api_key", `"sk-abc\ndef"`, "", "providers.openai.api_key must not contain control characters"},
		{"providers.openai.api_key", `"sk-abc\u0000def"`, "", "control characters"},
		{"providers.openai.api_key", `"sk-abc\tdef"`, "", "control characters"},
		{"providers.openai.api_key", `"sk-abc\u007fdef"`, "", "control characters"},
		{"providers.openai.api_key", `"sk-abc\u001bdef"`, "", "control characters"},
		{"providers.openai.api_key", "\"sk-abc\xffdef\"", "", "invalid UTF-8"},
		{"providers.openai.api_key", `"sk-abc\ud800def"`, "", "invalid UTF-8"},
		{"providers.bedrock.secret_access_key", `"wJalr\rXUtn"`, "", "providers.bedrock.secret_access_key must not"},
		{"providers.compat.groq.api_key", `"gsk_\u0000"`, "", "providers.compat.groq.api_key must not"},
		{"providers.openai.api_key", `" sk-abc\r\n"`, "sk-abc", ""},
		{"providers.openai.api_key", `"sk-ünïcode-ok"`, "sk-ünïcode-ok", ""},
		{"providers.openai.api_key", `42`, "", "must be a string"},
		{"providers.openai.api_key", `null`, "", "value is required"},
		{"providers.openai.api_key", ``, "", "value is required"},
		{"providers.openai.base_url", `"https://proxy.example/v1/"`, `"https://proxy.example/v1"`, ""},
		{"providers.openai.base_url", `"ftp://proxy.example"`, "", "http(s) URL"},
		{"providers.openai.base_url", `"https://user:pw@proxy.example"`, "", "without credentials"},
		{"providers.openai.base_url", `"https://proxy.example/?a=1"`, "", "query"},
		{"providers.openai.base_url", `"/relative"`, "", "http(s) URL"},
		{"providers.bedrock.region", `"eu-central-1"`, `"eu-central-1"`, ""},
		{"providers.bedrock.region", `"us-gov-west-1"`, `"us-gov-west-1"`, ""},
		{"providers.bedrock.region", `"evil.example/x"`, "", "AWS region"},
		{"providers.bedrock.region", `"us-east-1.attacker.test"`, "", "AWS region"},
		{"providers.compat.groq.base_url", `"https://api.groq.com/openai/v1/"`, `"https://api.groq.com/openai/v1"`, ""},
		{"providers.compat.groq.base_url", `"file:///etc/passwd"`, "", "http(s) URL"},
		{"gateway.default_rpm", `77`, "77", ""},
		{"gateway.default_rpm", `0`, "", "between 1 and 100000"},
		{"gateway.default_rpm", `100001`, "", "between 1 and 100000"},
		{"gateway.default_rpm", `2.5`, "", "must be an integer"},
		{"gateway.default_rpm", `"60"`, "", "must be an integer"},
		{"gateway.allowed_models", `[" gpt-4o ", "claude"]`, `["gpt-4o","claude"]`, ""},
		{"gateway.allowed_models", `[]`, `[]`, ""},
		{"gateway.allowed_models", `["ok", ""]`, "", "entry 1"},
		{"gateway.allowed_models", `"gpt-4o"`, "", "array of strings"},
		{"gateway.allowed_models", `[` + strings.Repeat(`"m",`, 500) + `"m"]`, "", "at most 500"},
	}
	for _, tt := range tests {
		t.Run(tt.key+"="+tt.raw, func(t *testing.T) {
			d, ok := Lookup(tt.key)
			if !ok {
				t.Fatalf("unknown key %s", tt.key)
			}
			got, err := d.Normalize(json.RawMessage(tt.raw))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("Normalize = %q, %v; want an error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("Normalize = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

var pro = billing.Plan{ID: "pro", RetentionDays: 30}

func TestApplyStorage(t *testing.T) {
	yes, no := true, false
	days := func(n int64) *int64 { return &n }
	cur := Storage{LogRequestBodies: true, RedactLoggedBodies: true, RetentionDays: 7}
	tests := []struct {
		name    string
		patch   StoragePatch
		want    Storage
		wantErr error
	}{
		{"nothing", StoragePatch{}, cur, nil},
		{"one flag", StoragePatch{RedactLoggedBodies: &no}, Storage{LogRequestBodies: true, RetentionDays: 7}, nil},
		{"all", StoragePatch{LogRequestBodies: &no, LogResponseBodies: &yes, RedactLoggedBodies: &no, RetentionDays: days(30)},
			Storage{LogResponseBodies: true, RetentionDays: 30}, nil},
		{"retention at the plan's", StoragePatch{RetentionDays: days(30)}, Storage{LogRequestBodies: true, RedactLoggedBodies: true, RetentionDays: 30}, nil},
		{"retention 1", StoragePatch{RetentionDays: days(1)}, Storage{LogRequestBodies: true, RedactLoggedBodies: true, RetentionDays: 1}, nil},
		{"retention 0", StoragePatch{RetentionDays: days(0)}, Storage{}, ErrRetentionTooShort},
		{"retention negative", StoragePatch{RetentionDays: days(-3)}, Storage{}, ErrRetentionTooShort},
		{"retention above the plan's", StoragePatch{RetentionDays: days(31)}, Storage{}, &RetentionLimitError{Days: 31, Max: 30, PlanID: "pro"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ApplyStorage(cur, tt.patch, pro)
			var rl *RetentionLimitError
			switch {
			case errors.As(tt.wantErr, &rl):
				var g *RetentionLimitError
				if !errors.As(err, &g) || *g != *rl {
					t.Errorf("err = %v, want %v", err, rl)
				}
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("err = %v, want %v", err, tt.wantErr)
				}
			case err != nil || got != tt.want:
				t.Errorf("ApplyStorage = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
	if msg := (&RetentionLimitError{Days: 31, Max: 30, PlanID: "pro"}).Error(); msg != "retention_days 31 is above the pro plan's limit of 30 days" {
		t.Errorf("message = %q", msg)
	}
}

func TestDefaultStorage(t *testing.T) {
	for _, tt := range []struct {
		plan billing.Plan
		want int64
	}{{pro, 7}, {billing.Plan{RetentionDays: 3}, 3}, {billing.Plan{RetentionDays: 7}, 7}} {
		if got := DefaultStorage(tt.plan); got != (Storage{RedactLoggedBodies: true, RetentionDays: tt.want}) {
			t.Errorf("DefaultStorage(retention %d) = %+v", tt.plan.RetentionDays, got)
		}
	}
}

// fakeBox "seals" as sealed(aad|plain), so the test sees what was bound.
type fakeBox struct{}

func (fakeBox) Seal(plain, aad string) (string, error) {
	return "sealed(" + aad + "|" + plain + ")", nil
}

func (fakeBox) Open(sealed, aad string) (string, error) {
	inner, ok := strings.CutPrefix(sealed, "sealed("+aad+"|")
	if !ok {
		return "", errors.New("does not open")
	}
	return strings.TrimSuffix(inner, ")"), nil
}

// fakeStore is an in-memory configs.Store (a test double).
type fakeStore struct {
	mu      sync.Mutex
	entries map[string]map[string]Entry
	plan    map[string]billing.Plan
	storage map[string]Storage
	audit   []audit.Entry
}

func (f *fakeStore) Configs(_ context.Context, tenantID string) ([]Entry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Entry
	for _, e := range f.entries[tenantID] {
		out = append(out, e)
	}
	return out, nil
}

func (f *fakeStore) PutConfig(_ context.Context, tenantID, _ string, e Entry) (Entry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e.UpdatedAt = time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	if f.entries[tenantID] == nil {
		f.entries[tenantID] = map[string]Entry{}
	}
	f.entries[tenantID][e.Key] = e
	return e, nil
}

func (f *fakeStore) WithTenantLocked(_ context.Context, tenantID string, fn func(Tx) error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.plan[tenantID]; !ok {
		return ErrNotFound
	}
	st, had := f.storage[tenantID]
	n := len(f.audit)
	if err := fn(fakeTx{f, tenantID}); err != nil {
		if had {
			f.storage[tenantID] = st
		} else {
			delete(f.storage, tenantID)
		}
		f.audit = f.audit[:n]
		return err
	}
	return nil
}

type fakeTx struct {
	f  *fakeStore
	id string
}

func (t fakeTx) Plan() billing.Plan { return t.f.plan[t.id] }

func (t fakeTx) Storage(context.Context) (Storage, bool, error) {
	st, ok := t.f.storage[t.id]
	return st, ok, nil
}

func (t fakeTx) PutStorage(_ context.Context, st Storage) error { t.f.storage[t.id] = st; return nil }

func (t fakeTx) Audit(_ context.Context, e audit.Entry) error {
	t.f.audit = append(t.f.audit, e)
	return nil
}

func newFake() *fakeStore {
	return &fakeStore{entries: map[string]map[string]Entry{}, plan: map[string]billing.Plan{"t1": pro}, storage: map[string]Storage{}}
}

func TestPutAndList(t *testing.T) {
	ctx := context.Background()
	f := newFake()
	s := NewService(slog.New(slog.NewTextHandler(io.Discard, nil)), f, fakeBox{}, nil)
	key, _ := Lookup("providers.openai.api_key")
	v, err := s.Put(ctx, "t1", audit.Actor{UserID: "u1"}, key, json.RawMessage(`"sk-proj-ABCDEFGHIJKLMNOP1234"`))
	if err != nil {
		t.Fatal(err)
	}
	if stored := f.entries["t1"][key.Key].Value; stored != "sealed(t1/providers.openai.api_key|sk-proj-ABCDEFGHIJKLMNOP1234)" {
		t.Errorf("stored %q: a secret must be sealed, bound to tenant and key", stored)
	}
	if v.Value != "sk-…1234" || !v.Secret || v.UpdatedAt == nil {
		t.Errorf("view = %+v", v)
	}
	rpm, _ := Lookup("gateway.default_rpm")
	if _, err := s.Put(ctx, "t1", audit.Actor{UserID: "u1"}, rpm, json.RawMessage(`0`)); !errors.As(err, new(*ValueError)) {
		t.Errorf("bad value: err = %v, want a *ValueError", err)
	}
	if _, err := s.Put(ctx, "t1", audit.Actor{UserID: "u1"}, rpm, json.RawMessage(`77`)); err != nil {
		t.Fatal(err)
	}
	// A ciphertext that does not open (copied from another tenant) is shown as "…".
	f.entries["t1"]["providers.google.api_key"] = Entry{Key: "providers.google.api_key", Value: "sealed(t2/providers.google.api_key|AIzaSECRET)", Secret: true}

	views, err := s.List(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]View{}
	for _, v := range views {
		got[v.Key] = v
	}
	if len(views) != len(Defs()) {
		t.Errorf("List has %d keys, want every known key (%d)", len(views), len(Defs()))
	}
	// An OpenAI-compatible upstream's keys are listed once stored.
	compat, _ := Lookup("providers.compat.groq.base_url")
	if _, err := s.Put(ctx, "t1", audit.Actor{UserID: "u1"}, compat, json.RawMessage(`"https://api.groq.com/openai/v1"`)); err != nil {
		t.Fatal(err)
	}
	if views, _ = s.List(ctx, "t1"); len(views) != len(Defs())+1 || views[len(views)-1].Key != compat.Key || views[len(views)-1].Value != "https://api.groq.com/openai/v1" {
		t.Errorf("compat key not listed: %+v", views[len(views)-1])
	}
	if got["gateway.default_rpm"].Value != 77.0 || got["providers.openai.api_key"].Value != "sk-…1234" || got["providers.google.api_key"].Value != "…" {
		t.Errorf("views = %+v", got)
	}
	if d := got["gateway.allowed_models"]; d.UpdatedAt != nil || d.Secret {
		t.Errorf("unset key view = %+v, want its default", d)
	}
}

func TestUpdateStorage(t *testing.T) {
	ctx := context.Background()
	f := newFake()
	s := NewService(slog.New(slog.NewTextHandler(io.Discard, nil)), f, fakeBox{}, nil)
	yes := true
	// No stored row: starts from DefaultStorage.
	st, err := s.UpdateStorage(ctx, "t1", audit.Actor{UserID: "u1"}, StoragePatch{LogRequestBodies: &yes})
	if err != nil || st != (Storage{LogRequestBodies: true, RedactLoggedBodies: true, RetentionDays: 7}) {
		t.Fatalf("UpdateStorage = %+v, %v", st, err)
	}
	if len(f.audit) != 1 || f.audit[0].Action != audit.StorageUpdate || f.audit[0].Details["retention_days"] != int64(7) {
		t.Errorf("audit = %+v", f.audit)
	}
	tooLong := int64(31)
	if _, err := s.UpdateStorage(ctx, "t1", audit.Actor{UserID: "u1"}, StoragePatch{RetentionDays: &tooLong}); !errors.As(err, new(*RetentionLimitError)) {
		t.Errorf("err = %v", err)
	}
	if f.storage["t1"].RetentionDays != 7 || len(f.audit) != 1 {
		t.Errorf("a refused update changed something: %+v, %d audit rows", f.storage["t1"], len(f.audit))
	}
	if _, err := s.UpdateStorage(ctx, "t9", audit.Actor{UserID: "u1"}, StoragePatch{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown tenant: err = %v", err)
	}
}

// TestPutRefusesDestinationsNeverAllowed: a tenant base URL the gateway
// could never send to (metadata, internal literal addresses, plain http in
// prod, loopback names) is refused when saved, naming why.
func TestPutRefusesDestinationsNeverAllowed(t *testing.T) {
	ctx := context.Background()
	prod := egress.Policy{RequireHTTPS: true}
	s := NewService(slog.New(slog.NewTextHandler(io.Discard, nil)), newFake(), fakeBox{}, prod.CheckURL)
	for _, tc := range []struct {
		key, url string
		ok       bool
	}{
		{"providers.openai.base_url", "https://proxy.example.com/v1", true},
		{"providers.openai.base_url", "http://proxy.example.com/v1", false},
		{"providers.openai.base_url", "https://169.254.169.254/latest", false},
		{"providers.compat.vllm.base_url", "https://10.1.2.3/v1", false},
		{"providers.compat.vllm.base_url", "https://localhost:8000/v1", false},
		{"providers.bedrock.base_url", "https://[fd00:ec2::254]/", false},
		{"providers.compat.groq.base_url", "https://api.groq.com/openai/v1", true},
	} {
		d, _ := Lookup(tc.key)
		_, err := s.Put(ctx, "t1", audit.Actor{UserID: "u1"}, d, json.RawMessage(`"`+tc.url+`"`))
		var ve *ValueError
		if tc.ok != (err == nil) || (!tc.ok && (!errors.As(err, &ve) || !strings.Contains(ve.Reason, "not an allowed destination"))) {
			t.Errorf("%s = %s: err %v, want ok=%v", tc.key, tc.url, err, tc.ok)
		}
	}
}

func TestAzureKeys(t *testing.T) {
	for _, tc := range []struct {
		key, raw string
		ok       bool
	}{
		{"providers.azure.resources", `["acme-prod","acme-dev"]`, true},
		{"providers.azure.resources", `["evil.example.com"]`, false},
		{"providers.azure.resources", `["Acme"]`, false},
		{"providers.azure.deployments", `["gpt4o-prod=gpt-4o"]`, true},
		{"providers.azure.deployments", `["gpt4o-prod"]`, false},
		{"providers.azure.deployments", `["a/b=gpt-4o"]`, false},
	} {
		d, ok := Lookup(tc.key)
		if !ok {
			t.Fatalf("%s unknown", tc.key)
		}
		if _, err := d.Normalize(json.RawMessage(tc.raw)); (err == nil) != tc.ok {
			t.Errorf("%s = %s: err %v, want ok=%v", tc.key, tc.raw, err, tc.ok)
		}
	}
}
