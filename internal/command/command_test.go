package command

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestAFailureCarriesWhatTheProgramSaid(t *testing.T) {
	_, err := Output(context.Background(), "sh", "-c", "echo out; echo 'fatal: it broke' >&2; exit 3")
	var cerr *Error
	if !errors.As(err, &cerr) || cerr.Stderr != "fatal: it broke" || err.Error() != "sh -c echo out; echo 'fatal: it broke' >&2; exit 3: fatal: it broke" {
		t.Fatalf("err = %v", err)
	}
}

func TestASilentFailureGivesTheExitStatus(t *testing.T) {
	_, err := Output(context.Background(), "sh", "-c", "exit 1")
	var cerr *Error
	if !errors.As(err, &cerr) || cerr.Stderr != "" || !strings.HasSuffix(err.Error(), ": exit status 1") {
		t.Fatalf("err = %v", err)
	}
}

func TestOutputIsWhatTheProgramWrote(t *testing.T) {
	out, err := Output(context.Background(), "sh", "-c", "printf ok")
	if err != nil || string(out) != "ok" {
		t.Fatalf("%q, %v", out, err)
	}
}

func TestCancellationStopsTheProgram(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { _, err := Output(ctx, "sleep", "30"); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want the context's error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the program outlived its context by 10s")
	}
}

func TestSummaryKeepsTheFirstAndLastLines(t *testing.T) {
	got := Summary("fatal: first\n\n  two\nthree\nfour\nlast one\n")
	if want := "fatal: first; …; four; last one"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}
