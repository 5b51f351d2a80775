//go:build unix

package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestServeSurvivesSIGHUP: SIGHUP sent to a serving gateway is logged and
// ignored (the process would otherwise die, and this test with it); the
// gateway stays ready and still stops cleanly on its context.
func TestServeSurvivesSIGHUP(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	var errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--dev", "--http", "127.0.0.1:0", "--token", "devtok"}, nil, pw, &errb)
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	var base string
	for sc.Scan() {
		if u, ok := strings.CutPrefix(sc.Text(), "softphone: "); ok {
			base = strings.TrimSuffix(u, "/?token=devtok")
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	if base == "" {
		t.Fatalf("no softphone URL; stderr: %s", errb.String())
	}
	ready := func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}
	// Serving (so the signal handling is in place) once /readyz answers.
	deadline := time.Now().Add(10 * time.Second)
	for !ready() {
		if time.Now().After(deadline) {
			t.Fatalf("gateway never ready; stderr: %s", errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for range 2 {
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	deadline = time.Now().Add(10 * time.Second)
	for !strings.Contains(errb.String(), "SIGHUP received and ignored") {
		if time.Now().After(deadline) {
			t.Fatalf("SIGHUP not logged; stderr: %s", errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !ready() {
		t.Error("gateway not ready after SIGHUP")
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit code %d", code)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop after its context ended")
	}
	// After serve returned SIGHUP stays ignored.
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
}
