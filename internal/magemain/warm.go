package magemain

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// Every is the longest silence while the targets are downloaded and compiled.
const Every = 10 * time.Second

// Prefix starts every line the entry point prints, as the targets' own lines (progress.Prefix).
const Prefix = "[runtime-build] "

// Runner runs the go command with args in the module's directory, writing its standard output
// and error to the writers given (exec.CommandContext in production, a fake in tests).
type Runner func(ctx context.Context, args []string, stdout, stderr io.Writer) error

// Warm does, with progress, the slow part of what mage is about to do on a first run: download
// the targets' modules and compile their packages into the build cache. Mage then only compiles
// its small main package and links, which Watch reports. Without it a first run is a minute or
// two of silence after one line.
type Warm struct {
	Run    Runner
	Out    io.Writer                         // where the lines go (stderr)
	Ticker func() (<-chan time.Time, func()) // a tick every Every; tests send ticks by hand
	Tags   string                            // build tags of the magefiles ("mage")
	Pkgs   []string                          // what mage's main package imports: the magefiles package and mage's runtime
}

// Do downloads and compiles, and returns how many packages it compiled; an error of the go
// command is printed as the go command said it and returned (mage's own compile would fail the
// same way, and say it again).
func (w Warm) Do(ctx context.Context) (int, error) {
	// What is stale: downloading the modules is part of listing them.
	dl := &counter{prefix: "go: downloading "}
	var listed bytes.Buffer
	err := w.phase(func() string {
		n, last := dl.get()
		if n == 0 {
			return "resolving the targets' modules"
		}
		return fmt.Sprintf("downloading the targets' modules: %d so far (%s)", n, last)
	}, func() error {
		args := append([]string{"list", "-e", "-deps", "-tags", w.Tags, "-f", "{{if .Stale}}{{.ImportPath}}{{end}}"}, w.Pkgs...)
		return w.Run(ctx, args, &listed, dl)
	})
	if err != nil {
		io.WriteString(w.Out, dl.text())
		return 0, err
	}
	if n, _ := dl.get(); n > 0 {
		fmt.Fprintf(w.Out, "%sdownloaded %d module(s)\n", Prefix, n)
	}
	stale := w.nonMain(strings.Fields(listed.String()))
	if len(stale) == 0 {
		return 0, nil // all in the build cache: mage's compile is quick
	}
	built := &counter{}
	fmt.Fprintf(w.Out, "%scompiling the targets: %d package(s) to build\n", Prefix, len(stale))
	err = w.phase(func() string {
		n, last := built.get()
		return fmt.Sprintf("compiling the targets: %d of %d packages (%s)", min(n, len(stale)), len(stale), last)
	}, func() error {
		args := append([]string{"build", "-v", "-tags", w.Tags}, stale...)
		return w.Run(ctx, args, io.Discard, built)
	})
	if err != nil {
		io.WriteString(w.Out, built.text())
		return 0, err
	}
	fmt.Fprintf(w.Out, "%scompiled %d package(s)\n", Prefix, len(stale))
	return len(stale), nil
}

// nonMain leaves out the magefiles package, which is package main without a main function
// until mage writes one: building it alone fails to link. Its imports are what is slow.
func (w Warm) nonMain(stale []string) []string {
	var out []string
	for _, p := range stale {
		if !strings.HasSuffix(p, "/magefiles") {
			out = append(out, p)
		}
	}
	return out
}

// phase runs do and prints status() at every tick until it returns.
func (w Warm) phase(status func() string, do func() error) error {
	ticks, stop := w.Ticker()
	defer stop()
	done := make(chan error, 1)
	go func() { done <- do() }()
	for {
		select {
		case err := <-done:
			return err
		case <-ticks:
			fmt.Fprintf(w.Out, "%s%s\n", Prefix, status())
		}
	}
}

// WatchAtMost bounds Watch: no link takes that long, and a program that was up to date after
// all (mage's go build links nothing then) must not hear of linking while the targets run.
const WatchAtMost = 5 * time.Minute

// Watch prints a line at every tick until the file at exe is written after start (mage's
// compiled targets, which it runs next), stop is closed, or WatchAtMost has passed: mage links
// silently.
func Watch(out io.Writer, exe string, start time.Time, ticker func() (<-chan time.Time, func()), now func() time.Time, stop <-chan struct{}) {
	fmt.Fprintf(out, "%slinking the targets into one program\n", Prefix)
	ticks, stopTicks := ticker()
	defer stopTicks()
	for {
		select {
		case <-stop:
			return
		case <-ticks:
			if fi, err := os.Stat(exe); err == nil && !fi.ModTime().Before(start.Truncate(time.Second)) || now().Sub(start) >= WatchAtMost {
				return
			}
			fmt.Fprintf(out, "%slinking the targets into one program (%s)\n", Prefix, now().Sub(start).Round(time.Second))
		}
	}
}

// counter counts the lines written to it (those starting with prefix, when set) and keeps the
// last one, and the whole text for an error.
type counter struct {
	prefix string
	mu     sync.Mutex
	n      int
	last   string
	buf    bytes.Buffer
	all    bytes.Buffer
}

func (c *counter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.all.Write(p)
	c.buf.Write(p)
	for {
		line, err := c.buf.ReadString('\n')
		if err != nil {
			c.buf.Reset()
			c.buf.WriteString(line) // a partial line waits for its end
			return len(p), nil
		}
		line = strings.TrimSpace(line)
		if line == "" || !strings.HasPrefix(line, c.prefix) || strings.HasPrefix(line, "#") {
			continue
		}
		c.n++
		c.last = strings.TrimPrefix(line, c.prefix)
	}
}

func (c *counter) get() (int, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n, c.last
}

func (c *counter) text() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.all.String()
}
