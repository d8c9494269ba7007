package buildkit

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/moby/buildkit/client"
)

// Hosts splits a comma-separated list of daemon addresses (BUILDKIT_HOST's form), dropping
// blanks and repeats.
func Hosts(list string) []string {
	var out []string
	for _, h := range strings.Split(list, ",") {
		if h = strings.TrimSpace(h); h != "" && !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	return out
}

// Farm is several buildkitd daemons. A build goes to the daemon its key (the target
// repository) ranks first by rendezvous hashing among those that answer: the same repository
// lands on the same daemon while it is up, so that daemon's local cache is warm, and a daemon
// going away moves only its own repositories.
type Farm struct {
	Daemons []Daemon
	// Warnf receives a line for each daemon skipped and each build sent on; nil: none.
	Warnf func(format string, args ...any)
	// PingTimeout bounds the check that a daemon answers; default 5 s.
	PingTimeout time.Duration

	beforeSolve func(Daemon)     // a test's hook: runs after the daemon answered, before the build is sent
	now         func() time.Time // a test's clock; nil: time.Now

	mu     sync.Mutex
	silent map[string]time.Time // host → when it last did not answer
}

// silentFor is how long a daemon that did not answer is tried after the others: a dead host
// costs a build no wait while another daemon answers, and gets its repositories back when it
// answers again.
const silentFor = 30 * time.Second

// tryOrder is Order with the daemons silent within silentFor moved to the end.
func (f *Farm) tryOrder(key string) []Daemon {
	order := f.Order(key)
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.clock()
	silent := func(d Daemon) bool { at, ok := f.silent[d.Host]; return ok && now.Sub(at) < silentFor }
	slices.SortStableFunc(order, func(a, b Daemon) int {
		switch sa, sb := silent(a), silent(b); {
		case sa == sb:
			return 0
		case sb:
			return -1
		}
		return 1
	})
	return order
}

// heard records whether d answered.
func (f *Farm) heard(d Daemon, answered bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if answered {
		delete(f.silent, d.Host)
		return
	}
	if f.silent == nil {
		f.silent = map[string]time.Time{}
	}
	f.silent[d.Host] = f.clock()
}

func (f *Farm) clock() time.Time {
	if f.now != nil {
		return f.now()
	}
	return time.Now()
}

// Order is the daemons in the order key tries them: highest rendezvous score first.
func (f *Farm) Order(key string) []Daemon {
	type scored struct {
		d     Daemon
		score uint64
	}
	all := make([]scored, 0, len(f.Daemons))
	for _, d := range f.Daemons {
		h := fnv.New64a()
		io.WriteString(h, d.Host)
		h.Write([]byte{0})
		io.WriteString(h, key)
		all = append(all, scored{d, mix(h.Sum64())})
	}
	slices.SortStableFunc(all, func(a, b scored) int {
		switch {
		case a.score > b.score:
			return -1
		case a.score < b.score:
			return 1
		}
		return 0
	})
	out := make([]Daemon, len(all))
	for i, s := range all {
		out[i] = s.d
	}
	return out
}

// mix spreads FNV's bits (SplitMix64's finalizer): keys that differ in their last bytes only
// still rank daemons independently.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// NoDaemonError says that no daemon of the farm answered.
type NoDaemonError struct {
	Tried []string // the hosts, in the order they were tried
}

func (e *NoDaemonError) Error() string {
	return fmt.Sprintf("no buildkitd answers (tried %s)", strings.Join(e.Tried, ", "))
}

// Unwrap makes a NoDaemonError an ErrUnreachable.
func (e *NoDaemonError) Unwrap() error { return ErrUnreachable }

// Solve runs b on the first daemon in key's order that answers; a daemon that does not is
// skipped. When the chosen daemon goes away before the build started a step of its
// Dockerfile, the build is sent once more, to the next daemon that answers.
func (f *Farm) Solve(ctx context.Context, key string, b Build, log io.Writer) (Report, error) {
	var tried []string
	retried := false
	for _, d := range f.tryOrder(key) {
		tried = append(tried, d.Host)
		c, err := f.reach(ctx, d)
		f.heard(d, err == nil)
		if err != nil {
			if ctx.Err() != nil {
				return Report{}, ctx.Err()
			}
			f.warnf("buildkitd %s does not answer, skipped: %v", d.Host, err)
			continue
		}
		if f.beforeSolve != nil {
			f.beforeSolve(d)
		}
		rep, started, err := solve(ctx, c, b, log)
		rep.Daemon = d.Host
		if err == nil || ctx.Err() != nil || started || retried || f.answers(ctx, c) {
			c.Close()
			return rep, err
		}
		c.Close()
		f.heard(d, false)
		retried = true
		f.warnf("buildkitd %s went away before the build started a step (%v): sending the build to the next daemon", d.Host, err)
		fmt.Fprintf(log, "buildkitd %s went away before the build started; building on the next daemon\n", d.Host)
	}
	return Report{}, &NoDaemonError{Tried: tried}
}

// reach connects to d and checks that it answers.
func (f *Farm) reach(ctx context.Context, d Daemon) (*client.Client, error) {
	c, err := d.Connect(ctx)
	if err != nil {
		return nil, err
	}
	if !f.answers(ctx, c) {
		c.Close()
		return nil, errors.New("no answer within " + f.pingTimeout().String())
	}
	return c, nil
}

// answers reports whether c lists its workers within PingTimeout.
func (f *Farm) answers(ctx context.Context, c *client.Client) bool {
	ctx, cancel := context.WithTimeout(ctx, f.pingTimeout())
	defer cancel()
	_, err := c.ListWorkers(ctx)
	return err == nil
}

func (f *Farm) pingTimeout() time.Duration {
	if f.PingTimeout > 0 {
		return f.PingTimeout
	}
	return 5 * time.Second
}

func (f *Farm) warnf(format string, args ...any) {
	if f.Warnf != nil {
		f.Warnf(format, args...)
	}
}
