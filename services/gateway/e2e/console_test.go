package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

var (
	signInCodeRE = regexp.MustCompile(`sign-in code is:(?:\\n|\s)*([0-9]{6})`)
	inviteLinkRE = regexp.MustCompile(`/console/#/accept-invite\?token=([A-Za-z0-9_%-]+)`)
	consoleVerRE = regexp.MustCompile(`/console/#/verify-email\?token=([A-Za-z0-9_-]{43})`)
)

// lastMatch waits for re in the platform's log (the dev mailer) and returns
// the first group of its last match.
func (s *stack) lastMatch(re *regexp.Regexp, after int) string {
	s.t.Helper()
	var got string
	eventually(s.t, 10*time.Second, func() error {
		logs := s.platform.logs()
		if after > len(logs) {
			after = len(logs)
		}
		m := re.FindAllStringSubmatch(logs[after:], -1)
		if len(m) == 0 {
			return fmt.Errorf("no %s in the platform log", re)
		}
		got = m[len(m)-1][1]
		return nil
	})
	return got
}

// TestConsole drives the web console in chromium against both real
// services and the fake provider: sign up, create an organisation, store a
// provider credential, create a key, send traffic with the official OpenAI
// SDK and find it in the request log and the charts; a policy's validation
// error on its field, a blocking policy, its violation; members, plan,
// storage, the platform-admin area; sign out, keyboard sign-in; a viewer
// (signed in with an emailed code, joined through an invite) sees no
// create button. Every page is screenshotted; no page may trip the CSP, and
// no token or key may ever appear in a URL.
func TestConsole(t *testing.T) {
	t.Parallel()
	id := randHex(3)
	owner, viewer := "owner-"+id+"@example.com", "viewer-"+id+"@example.com"
	const password = "correct-horse-battery"
	at := time.Now()
	s := newStack(t, "PLATFORM_ADMIN_EMAILS="+owner)
	t.Logf("stack started in %s", time.Since(at))
	b := newBrowser(t, s.platformURL)
	defer b.check()

	// Sign-in page, then sign up.
	b.do("open the console", chromedp.Navigate(s.platformURL+"/console/"))
	b.waitFor("sign-in page", `document.querySelector('#signin-password')`, 15*time.Second)
	b.shot("signin")
	b.click(`a[href="#/signup"]`)
	b.waitFor("sign-up page", `document.querySelector('main h1')?.textContent === 'Create an account'`, 10*time.Second)
	b.typeIn(`main input[name=name]`, "Olive Owner")
	b.typeIn(`main input[name=email]`, owner)
	b.typeIn(`main input[name=password]`, password)
	b.shot("signup")
	b.click(`main button[type=submit]`)

	// No organisation yet: create one (the slug follows the name).
	b.waitFor("organisations page", `location.hash === '#/tenants' && document.querySelector('main form[aria-label="Create an organisation"]')`, 15*time.Second)
	b.typeIn(`main input[name=name]`, "Browser Co "+id)
	b.waitFor("slug availability", `document.querySelector('main .field[data-field=slug] p[aria-live]')?.textContent.includes('is available')`, 10*time.Second)
	b.shot("organisations")
	b.click(`main form[aria-label="Create an organisation"] button[type=submit]`)
	b.waitFor("overview after creating the organisation", `location.hash === '#/overview' && document.querySelector('[data-stat=requests]')`, 15*time.Second)
	if got := b.text(`.topbar .tenant`); !strings.Contains(got, "Browser Co "+id) || !strings.Contains(got, "owner") {
		t.Fatalf("header shows %q", got)
	}

	// A provider credential, shown masked afterwards.
	credential := "sk-upstream-" + randHex(12)
	b.page("credentials", "Provider credentials")
	b.click(`button[aria-label="Set providers.openai.api_key"]`)
	b.typeIn(`dialog input[name=value]`, credential)
	b.click(`dialog button[type=submit]`)
	b.waitFor("masked credential", `document.querySelector('tr[data-config="providers.openai.api_key"] code.masked')`, 10*time.Second)
	if shown := b.text(`tr[data-config="providers.openai.api_key"] code.masked`); shown == "" || strings.Contains(shown, credential) {
		t.Fatalf("credential shown as %q", shown)
	}
	b.shot("credentials")

	// An API key: the secret is shown once, with a copy button.
	b.page("keys", "API keys")
	b.click(`#create-key`)
	b.typeIn(`dialog input[name=name]`, "browser-key")
	b.typeIn(`dialog input[name=rpm_limit]`, "50")
	b.click(`dialog button[type=submit]`)
	b.waitFor("the new key's secret", `document.querySelector('#new-key-secret')?.value.startsWith('sk-')`, 10*time.Second)
	apiKey := evalJS[string](b, `document.querySelector('#new-key-secret').value`)
	if len(apiKey) != 43 || !b.exists(`#copy-key`) {
		t.Fatalf("secret %q (copy button %v)", apiKey, b.exists(`#copy-key`))
	}
	b.shot("key-created")
	b.pressKeys(kb.Escape) // the native dialog closes on Escape
	b.waitFor("key in the list", `!document.querySelector('dialog') && [...document.querySelectorAll('main tbody tr')].some(r => r.textContent.includes('browser-key'))`, 10*time.Second)
	if b.exists(`#new-key-secret`) {
		t.Fatal("the secret is still in the page after the dialog closed")
	}
	b.shot("keys")
	// Keys belong to an environment: staging has none.
	b.choose(`#env-select`, "staging")
	b.waitFor("staging keys", `document.querySelector('main p.hint')?.textContent.includes('staging') && document.querySelector('main p.empty')`, 10*time.Second)
	b.choose(`#env-select`, "production")
	b.waitFor("production keys", `document.querySelector('main p.hint')?.textContent.includes('production') && document.querySelector('main tbody')`, 10*time.Second)

	// Traffic through the official OpenAI SDK: three answers and a stream.
	client := openai.NewClient(option.WithBaseURL(s.gatewayURL+"/trueportai-services/openai/v1/"), option.WithAPIKey(apiKey), option.WithMaxRetries(0))
	params := openai.ChatCompletionNewParams{Model: "gpt-4o-mini", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Hello from the console test")}}
	for range 3 {
		if _, err := client.Chat.Completions.New(context.Background(), params); err != nil {
			t.Fatalf("chat completion: %v", err)
		}
	}
	stream := client.Chat.Completions.NewStreaming(context.Background(), params)
	for stream.Next() {
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("stream: %v", err)
	}

	// The request log shows them (ingested within seconds); a request's detail.
	b.page("logs", "Request log")
	b.waitForRows("request log", 4, 20*time.Second)
	if got := b.text(`main tbody tr:first-child`); !strings.Contains(got, "gpt-4o-mini") || !strings.Contains(got, "browser-key") || !strings.Contains(got, "200") {
		t.Fatalf("newest log row: %q", got)
	}
	b.shot("request-log")
	b.click(`main tbody tr:first-child button.link`)
	b.waitFor("request detail", `document.querySelector('dialog dl.facts')?.textContent.includes('Total tokens')`, 10*time.Second)
	if !strings.Contains(b.text(`dialog`), "Bodies are not kept") {
		t.Errorf("request detail without the storage note: %q", b.text(`dialog`))
	}
	b.shot("request-detail")
	b.pressKeys(kb.Escape)
	// Filters travel in the fragment: streamed requests only.
	b.choose(`main select[name=stream]`, "true")
	b.click(`main form[aria-label=Filters] button[type=submit]`)
	b.waitFor("stream filter", `location.hash.includes('stream=true') && document.querySelectorAll('main tbody tr').length === 1`, 10*time.Second)

	// The overview's charts and totals count them.
	b.page("overview", "Overview")
	b.waitFor("overview totals", `document.querySelector('[data-stat=requests] .stat-value')?.textContent === '4'`, 10*time.Second)
	b.waitFor("requests chart", `document.querySelector('figure[data-chart=requests]')?.dataset.sum === '4' && document.querySelector('figure[data-chart=requests] canvas')`, 10*time.Second)
	b.waitFor("latency chart", `Number(document.querySelector('figure[data-chart=p95_latency_ms]')?.dataset.points) > 0`, 10*time.Second)
	if got := b.text(`[data-breakdown="By model"]`); !strings.Contains(got, "gpt-4o-mini") {
		t.Fatalf("model breakdown: %q", got)
	}
	if got := b.text(`[data-breakdown="By key"]`); !strings.Contains(got, "browser-key") {
		t.Fatalf("key breakdown: %q", got)
	}
	b.shot("overview")

	// A policy: the API's validation error lands on its field; then a
	// blocking keyword rule.
	b.page("policies", "Policies")
	b.click(`#new-policy`)
	b.typeIn(`dialog input[name=name]`, "Block codename")
	b.choose(`dialog select[name=type]`, "regex")
	b.typeIn(`dialog input[name="config.pattern"]`, "(unclosed")
	b.click(`dialog button[type=submit]`)
	b.waitFor("field error", `document.querySelector('dialog [data-field="config.pattern"] .field-error')?.textContent.includes('RE2')`, 10*time.Second)
	if got := evalJS[string](b, `document.activeElement?.name || ''`); got != "config.pattern" {
		t.Errorf("focus after the error is on %q, want the pattern field", got)
	}
	b.shot("policy-field-error")
	b.choose(`dialog select[name=type]`, "keyword")
	b.typeIn(`dialog textarea[name="config.keywords"]`, "project-nightingale")
	b.choose(`dialog select[name=action]`, "block")
	b.click(`dialog button[type=submit]`)
	b.waitFor("policy listed", `!document.querySelector('dialog') && document.querySelector('main tbody')?.textContent.includes('Block codename')`, 10*time.Second)
	b.shot("policies")

	// Trigger it: the SDK gets the provider-shaped 400.
	blocked := params
	blocked.Messages = []openai.ChatCompletionMessageParamUnion{openai.UserMessage("What is project-nightingale?")}
	eventuallyEvery(t, 15*time.Second, time.Second, func() error {
		_, err := client.Chat.Completions.New(context.Background(), blocked)
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusBadRequest || apiErr.Code != "policy_violation" {
			return fmt.Errorf("not blocked yet: %v", err)
		}
		return nil
	})
	b.page("violations", "Violations")
	b.waitForRows("violations", 1, 20*time.Second)
	if got := b.text(`main tbody tr:first-child`); !strings.Contains(got, "Block codename") || !strings.Contains(got, "block") {
		t.Fatalf("violation row: %q", got)
	}
	b.shot("violations")
	b.click(`main tbody tr:first-child button.link`)
	b.waitFor("violation detail", `document.querySelector('dialog .snippet')`, 10*time.Second)
	if got := b.text(`dialog .snippet`); strings.Contains(got, "nightingale") {
		t.Errorf("the match is not masked: %q", got)
	}
	b.shot("violation-detail")
	b.pressKeys(kb.Escape)

	// Members: invite a viewer.
	b.page("members", "Members and invites")
	b.click(`#invite`)
	b.typeIn(`dialog input[name=email]`, viewer)
	b.choose(`dialog select[name=role]`, "viewer")
	logMark := len(s.platform.logs())
	b.click(`dialog button[type=submit]`)
	b.waitFor("pending invite", `!document.querySelector('dialog') && document.querySelector('main')?.textContent.includes(`+js(viewer)+`)`, 10*time.Second)
	b.shot("members")
	inviteToken := s.lastMatch(inviteLinkRE, logMark)

	b.page("billing", "Plan and subscription")
	b.waitFor("plans", `document.querySelectorAll('section.plan').length >= 2 && document.querySelector('section.plan.current')`, 10*time.Second)
	b.shot("plan")
	b.page("storage", "Storage settings")
	b.waitFor("storage form", `document.querySelector('main input[name=retention_days]')`, 10*time.Second)
	b.shot("storage")

	// The owner's address is in PLATFORM_ADMIN_EMAILS: proving it (the
	// mailed link opens the console) opens the platform-admin area.
	b.page("account", "Account")
	logMark = len(s.platform.logs())
	b.click(`main button.secondary`)
	b.waitFor("verification mail sent", `document.querySelector('main')?.textContent.includes('on its way')`, 10*time.Second)
	verifyToken := s.lastMatch(consoleVerRE, logMark)
	evalJS[chromedp.Void](b, "location.hash = "+js("#/verify-email?token="+verifyToken))
	b.waitFor("verify page", `location.hash === '#/verify-email' && document.querySelector('main input[name=token]')?.value.length === 43`, 10*time.Second)
	b.click(`main button[type=submit]`)
	b.waitFor("verified", `document.querySelector('main')?.textContent.includes('is verified')`, 10*time.Second)
	b.click(`main a[href="#/admin"]`)
	b.waitFor("admin area", `document.querySelector('main h1')?.textContent === 'Platform admin' && document.querySelector('.topbar a[href="#/admin"]')`, 10*time.Second)
	b.waitFor("admin stats", `document.querySelectorAll('main .stat').length >= 3`, 10*time.Second)
	b.idle()
	b.shot("admin-stats")
	b.page("admin/tenants", "Tenants")
	b.waitFor("admin tenants", `document.querySelector('main tbody')?.textContent.includes('Browser Co')`, 10*time.Second)
	b.shot("admin-tenants")
	b.click(`main tbody a[href^="#/admin/tenant?id="]`)
	b.waitFor("admin tenant detail", `document.querySelector('main h1')?.textContent === 'Browser Co `+id+`' && document.querySelector('main dl.facts')?.textContent.includes(`+js(owner)+`)`, 10*time.Second)
	b.shot("admin-tenant")
	b.page("admin/users", "Users")
	b.waitFor("admin users", `document.querySelector('main tbody')?.textContent.includes(`+js(owner)+`)`, 10*time.Second)
	b.shot("admin-users")
	b.page("admin/configs", "Global configs")
	b.waitFor("global configs", `document.querySelector('main tbody')?.textContent.includes('signup.enabled')`, 10*time.Second)
	b.shot("admin-configs")
	b.page("admin/audit", "Audit log")
	b.waitFor("audit", `document.querySelector('main tbody')?.textContent.includes('invite')`, 10*time.Second)
	b.shot("admin-audit")

	// Sign out; sign in again with the keyboard only (Tab, Enter).
	b.click(`#sign-out`)
	b.waitFor("signed out", `location.hash === '#/signin' && document.querySelector('main')?.textContent.includes('You signed out')`, 10*time.Second)
	if evalJS[bool](b, `!!sessionStorage.getItem('trueportai.console.session')`) {
		t.Fatal("the session outlived sign-out")
	}
	b.typeIn(`#signin-password input[name=email]`, owner+kb.Tab+password+kb.Enter)
	b.waitFor("keyboard sign-in", `location.hash === '#/tenants'`, 15*time.Second)

	// The viewer: registers (API), signs in with an emailed code, joins
	// through the mailed invite link, and sees no create button.
	if c := call(t, "POST", s.platformURL+"/platform/api/global/auth/register", "", map[string]string{"email": viewer, "password": password}, nil); c != http.StatusCreated {
		t.Fatalf("register the viewer: %d", c)
	}
	b.click(`#sign-out`)
	b.waitFor("signed out", `location.hash === '#/signin'`, 10*time.Second)
	b.click(`#tab-code`)
	b.typeIn(`#signin-code input[name=email]`, viewer)
	logMark = len(s.platform.logs())
	b.click(`#signin-code button[type=submit]`)
	b.waitFor("code field", `document.querySelector('#signin-code input[name=code]')`, 10*time.Second)
	b.shot("signin-email-code")
	b.typeIn(`#signin-code input[name=code]`, s.lastMatch(signInCodeRE, logMark)+kb.Enter)
	b.waitFor("viewer signed in", `location.hash === '#/tenants'`, 15*time.Second)
	evalJS[chromedp.Void](b, "location.hash = "+js("#/accept-invite?token="+inviteToken))
	b.waitFor("accept page", `location.hash === '#/accept-invite' && document.querySelector('main input[name=token]')?.value`, 10*time.Second)
	b.click(`main button[type=submit]`)
	b.waitFor("viewer home", `location.hash === '#/members' && document.querySelector('main tbody')`, 15*time.Second)
	if got := b.text(`.topbar .tenant`); !strings.Contains(got, "viewer") {
		t.Fatalf("viewer header: %q", got)
	}
	if b.exists(`#invite`) || b.exists(`main select`) {
		t.Error("a viewer sees the invite button or role selects")
	}
	if nav := b.text(`nav.sidebar ul`); strings.Contains(nav, "API keys") || strings.Contains(nav, "Policies") || strings.Contains(nav, "Storage") {
		t.Errorf("viewer navigation: %q", nav)
	}
	b.shot("viewer-members")
	b.page("credentials", "Provider credentials")
	if b.exists(`main table button`) || b.exists(`#add-compat`) {
		t.Error("a viewer sees credential buttons")
	}
	b.shot("viewer-credentials")
	b.page("keys", "API keys")
	if b.exists(`#create-key`) || !strings.Contains(b.text(`main .notice`), "member role") {
		t.Errorf("a viewer's keys page: %q", b.text(`main`))
	}
	b.shot("viewer-keys")
	b.page("billing", "Plan and subscription")
	if b.exists(`main section.plan button`) {
		t.Error("a viewer sees plan switch buttons")
	}

	// The session ends when its token expires (here: made to expire in a
	// second, as the stored expiry says after a reload).
	evalJS[chromedp.Void](b, `(() => { const k = 'trueportai.console.session'; const s = JSON.parse(sessionStorage.getItem(k));
		s.global.exp = Date.now() + 1500; sessionStorage.setItem(k, JSON.stringify(s)); })()`)
	b.do("reload", chromedp.Reload())
	b.waitFor("session expired", `location.hash === '#/signin' && document.querySelector('main')?.textContent.includes('session expired')`, 10*time.Second)
	if evalJS[bool](b, `!!sessionStorage.getItem('trueportai.console.session')`) {
		t.Error("the expired session is still stored")
	}

	// No token, key or mailed secret ever travelled in a URL the browser
	// requested (fragments included).
	for _, u := range b.requestedURLs() {
		if strings.Contains(u, "eyJ") || strings.Contains(u, apiKey) || strings.Contains(u, credential) || strings.Contains(u, "token=") {
			t.Errorf("a secret in a requested URL: %s", u)
		}
	}
}

// waitForRows clicks Refresh until the page's table has at least n rows.
func (b *browser) waitForRows(what string, n int, timeout time.Duration) {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for evalJS[int](b, `document.querySelectorAll('main tbody tr').length`) < n {
		if time.Now().After(deadline) {
			b.shot("failure")
			b.t.Fatalf("%s: fewer than %d rows within %s: %.400s", what, n, timeout, b.text(`main`))
		}
		time.Sleep(time.Second)
		b.click(`main .page-head button.secondary`) // Refresh
		b.idle()
	}
}
