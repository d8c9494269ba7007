package targets

import (
	"context"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/runtimebuild/runtimebuild/internal/exitcode"
	"github.com/runtimebuild/runtimebuild/internal/progress"
)

// Signals are process-wide, so one watch serves every target of the run (a target and the
// ones it depends on through mg.CtxDeps). Mage's own main catches only SIGINT, prints a line
// of its own and forces the exit at a second one; the watch takes SIGINT over from it once a
// bar is drawn, so that nothing writes into the bar before it is cleared.
var watch = &signalWatch{}

type signalWatch struct {
	once   sync.Once
	ch     chan os.Signal
	mu     sync.Mutex
	caught os.Signal
	subs   map[*subscription]bool
}

type subscription struct {
	log    *progress.Log
	cancel context.CancelFunc
}

func (w *signalWatch) start() {
	w.once.Do(func() {
		w.ch = make(chan os.Signal, 2)
		w.subs = map[*subscription]bool{}
		signal.Notify(w.ch, os.Interrupt, syscall.SIGTERM)
		go w.loop()
	})
}

func (w *signalWatch) loop() {
	for sig := range w.ch {
		w.mu.Lock()
		first := w.caught == nil
		if first {
			w.caught = sig
		}
		subs := make([]*subscription, 0, len(w.subs))
		for s := range w.subs {
			subs = append(subs, s)
		}
		w.mu.Unlock()
		if !first { // a second signal: the user will not wait for the cleanup
			os.Exit(exitCodeOf(sig))
		}
		for _, s := range subs {
			s.log.Interrupt()
			s.cancel()
		}
	}
}

// takeOverSIGINT makes the watch the only receiver of SIGINT (mage's main stops hearing it).
func (w *signalWatch) takeOverSIGINT() {
	signal.Reset(os.Interrupt)
	signal.Notify(w.ch, os.Interrupt, syscall.SIGTERM)
}

// interruptible cancels ctx at Ctrl-C or SIGTERM, clearing log's bar first; stop ends the
// watch of this run and returns the signal that came, if one did.
func interruptible(ctx context.Context, log *progress.Log) (context.Context, func() os.Signal) {
	watch.start()
	ctx, cancel := context.WithCancel(ctx)
	sub := &subscription{log: log, cancel: cancel}
	watch.mu.Lock()
	watch.subs[sub] = true
	caught := watch.caught
	watch.mu.Unlock()
	if caught != nil {
		cancel()
	}
	log.OnFirstDraw(watch.takeOverSIGINT)
	return ctx, func() os.Signal {
		watch.mu.Lock()
		defer watch.mu.Unlock()
		delete(watch.subs, sub)
		cancel()
		return watch.caught
	}
}

func exitCodeOf(sig os.Signal) int {
	if sig == syscall.SIGTERM {
		return exitcode.Terminated
	}
	return exitcode.Interrupted
}
