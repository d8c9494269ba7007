package targets

import (
	"bytes"
	"context"
	"os"
	"os/signal"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/runtimebuild/runtimebuild/internal/exitcode"
	"github.com/runtimebuild/runtimebuild/internal/progress"
)

// signals is the one owner of SIGINT and SIGTERM in the process: a context that ends at the
// first of them, made when the first target starts. Signals are process-wide, so every
// target of the run (and a magefile importing them) shares it; a later Ctrl-C is absorbed
// while the run cleans up, and the exit code is chosen once it has (130 or 143).
var signals struct {
	once sync.Once
	ctx  context.Context
}

func signalled() context.Context {
	signals.once.Do(func() {
		afterMageRegistered()
		// Reset drops every receiver of SIGINT, mage's with it: mage's main would print
		// "cancelling mage targets, waiting up to 5 seconds for cleanup..." and exit 1 at a
		// second Ctrl-C.
		signal.Reset(os.Interrupt)
		signals.ctx, _ = signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	})
	return signals.ctx
}

// afterMageRegistered returns once mage's generated main has registered its SIGINT channel.
// Its runTarget starts the target's goroutine first, then calls signal.Notify, then blocks in a
// select: so wait (bounded) until the main goroutine is blocked. Run any other way (a test
// calling the target), the main goroutine is blocked already.
func afterMageRegistered() {
	buf := make([]byte, 64<<10)
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); {
		n := runtime.Stack(buf, true)
		i := bytes.Index(buf[:n], []byte("goroutine 1 ["))
		if i < 0 { // not in the dump (too long): it is not ours to wait for
			return
		}
		state := buf[i+len("goroutine 1 [") : n]
		if !bytes.HasPrefix(state, []byte("running")) && !bytes.HasPrefix(state, []byte("runnable")) && !bytes.HasPrefix(state, []byte("syscall")) {
			return
		}
		time.Sleep(100 * time.Microsecond) // the main goroutine is one statement from its select
	}
}

// interruptible returns ctx cancelled at Ctrl-C or SIGTERM, with log's bar cleared at once;
// stop ends the watch and returns the signal that came, if one did.
func interruptible(ctx context.Context, log *progress.Log) (context.Context, func() os.Signal) {
	sig := signalled()
	ctx, cancel := context.WithCancelCause(ctx)
	stopWatch := context.AfterFunc(sig, func() {
		log.Interrupt()
		cancel(context.Cause(sig))
	})
	return ctx, func() os.Signal {
		stopWatch()
		cancel(nil)
		return caught(sig)
	}
}

// caught is the signal that ended sig, or nil.
func caught(sig context.Context) os.Signal {
	cause := context.Cause(sig)
	switch {
	case cause == nil:
		return nil
	case cause.Error() == syscall.SIGTERM.String()+" signal received": // signal.NotifyContext's words
		return syscall.SIGTERM
	}
	return os.Interrupt
}

func exitCodeOf(sig os.Signal) int {
	if sig == syscall.SIGTERM {
		return exitcode.Terminated
	}
	return exitcode.Interrupted
}
