package server

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

// Limits bound what clients can hold of the server: connections, time, uploads at once.
// A zero field takes its default.
type Limits struct {
	ReadHeaderTimeout time.Duration // to send a request's headers; default 10 s
	IdleTimeout       time.Duration // a keep-alive connection waiting for its next request; default 60 s
	WriteTimeout      time.Duration // to take an answer; default 1 min
	BodyGrace         time.Duration // an upload's body may lag MinBodyRate by this much; default 30 s
	MinBodyRate       int64         // bytes per second an upload's body must average; default 16 KiB
	MaxConns          int           // connections open at once; beyond it the longest idle one is closed; default 256
	MaxUploads        int           // uploads received at once; one more answers 429 before its body is read; default 4
}

func (l Limits) withDefaults() Limits {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&l.ReadHeaderTimeout, 10*time.Second)
	def(&l.IdleTimeout, time.Minute)
	def(&l.WriteTimeout, time.Minute)
	def(&l.BodyGrace, 30*time.Second)
	if l.MinBodyRate <= 0 {
		l.MinBodyRate = 16 << 10
	}
	if l.MaxConns <= 0 {
		l.MaxConns = 256
	}
	if l.MaxUploads <= 0 {
		l.MaxUploads = 4
	}
	return l
}

// HTTPServer is an http.Server for Handler with the header, idle and write timeouts of the
// server's Limits; serve it on Listener(ln) for the connection cap.
func (s *Server) HTTPServer() *http.Server {
	return &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: s.opts.Limits.ReadHeaderTimeout,
		IdleTimeout:       s.opts.Limits.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ConnState:         s.conns.track,
	}
}

// Listener wraps ln so that at most Limits.MaxConns connections are open at once: a new one
// closes the connection idle the longest (or still silent since it was accepted), and is
// itself closed when every connection is busy with a request. Idle connections cannot starve
// clients that have something to ask.
func (s *Server) Listener(ln net.Listener) net.Listener {
	return &limitedListener{Listener: ln, conns: s.conns}
}

type limitedListener struct {
	net.Listener
	conns *connTracker
}

func (l *limitedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.conns.admit(c) {
			return c, nil
		}
		c.Close()
	}
}

// connTracker knows the open connections and their http.ConnState.
type connTracker struct {
	max   int
	mu    sync.Mutex
	seq   uint64 // orders state changes: the lowest idle one has waited longest
	conns map[net.Conn]connState
}

type connState struct {
	state http.ConnState
	since uint64
}

func newConnTracker(max int) *connTracker {
	return &connTracker{max: max, conns: map[net.Conn]connState{}}
}

// admit makes room for c, closing the longest idle connection when at the cap; false when
// every open connection is busy.
func (t *connTracker) admit(c net.Conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.conns) >= t.max {
		var victim net.Conn
		var oldest uint64
		for vc, st := range t.conns {
			if (st.state == http.StateNew || st.state == http.StateIdle) && (victim == nil || st.since < oldest) {
				victim, oldest = vc, st.since
			}
		}
		if victim == nil {
			return false
		}
		delete(t.conns, victim)
		victim.Close()
	}
	t.seq++
	t.conns[c] = connState{http.StateNew, t.seq}
	return true
}

// track is the http.Server's ConnState hook; connections not admitted are not followed.
func (t *connTracker) track(c net.Conn, state http.ConnState) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.conns[c]; !ok {
		return
	}
	switch state {
	case http.StateClosed, http.StateHijacked:
		delete(t.conns, c)
	default:
		t.seq++
		t.conns[c] = connState{state, t.seq}
	}
}

// errTooSlow is an upload whose body came slower than Limits.MinBodyRate.
var errTooSlow = errors.New("the upload came too slowly")

// pacedBody fails a request body that falls behind a minimum rate: before each read the
// connection's read deadline is set to when the bytes read so far were due, plus a grace.
type pacedBody struct {
	io.ReadCloser
	rc    *http.ResponseController
	start time.Time
	grace time.Duration
	rate  int64
	read  int64
}

func (p *pacedBody) Read(b []byte) (int, error) {
	due := p.start.Add(p.grace + time.Duration(float64(p.read)/float64(p.rate)*float64(time.Second)))
	p.rc.SetReadDeadline(due) // not supported (a recorder in tests): no pacing
	n, err := p.ReadCloser.Read(b)
	p.read += int64(n)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return n, fmt.Errorf("%w: after %d bytes, send at least %d KiB/s on average (%s of grace)", errTooSlow, p.read, p.rate>>10, p.grace)
	}
	if err == io.EOF {
		p.rc.SetReadDeadline(time.Time{}) // the connection outlives the body
	}
	return n, err
}
