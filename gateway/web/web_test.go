package web

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestSecurityHeaders: the softphone page, its script, a missing file and
// any response under SecureHeaders refuse framing and sniffing and send no
// Referer (the page's URL may hold a call token).
func TestSecurityHeaders(t *testing.T) {
	other := SecureHeaders(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte("<p>hi</p>"))
	}))
	for _, c := range []struct {
		name string
		h    http.Handler
		path string
		code int
	}{
		{"page", Handler(), "/?token=abc", http.StatusOK},
		{"script", Handler(), "/softphone.js", http.StatusOK},
		{"missing", Handler(), "/nope.html", http.StatusNotFound},
		{"other route", other, "/x", http.StatusOK},
	} {
		t.Run(c.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			c.h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, c.path, nil))
			if rec.Code != c.code {
				t.Fatalf("status %d, want %d", rec.Code, c.code)
			}
			h := rec.Header()
			if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
				t.Errorf("Content-Security-Policy %q has no frame-ancestors 'none'", csp)
			}
			for k, want := range map[string]string{"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"} {
				if got := h.Get(k); got != want {
					t.Errorf("%s: %q, want %q", k, got, want)
				}
			}
		})
	}
}

// TestSoftphoneStripsToken: the script takes the call token from the URL,
// then replaces the history entry with the URL without it.
func TestSoftphoneStripsToken(t *testing.T) {
	b, err := static.ReadFile("static/softphone.js")
	if err != nil {
		t.Fatal(err)
	}
	js := string(b)
	read := strings.Index(js, `$("token").value = params.get("token")`)
	del := strings.Index(js, `searchParams.delete("token")`)
	repl := strings.Index(js, "history.replaceState(")
	if read < 0 || del < read || repl < del {
		t.Fatalf("softphone.js must read the token, delete it from the URL and history.replaceState (offsets %d, %d, %d)", read, del, repl)
	}
}
