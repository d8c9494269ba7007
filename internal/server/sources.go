package server

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/moby/buildkit/frontend/dockerfile/dfgitutil"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/util/gitutil"

	"github.com/runtimebuild/runtimebuild/internal/dockerfile"
)

// This file reads what a Dockerfile fetches (images and URLs, with their lines) so that the
// trust boundary can be enforced before BuildKit runs it: bases come from registries, sources
// never reach serve's own networks.

// imageUse is an image a Dockerfile reads: a FROM, COPY --from, RUN --mount from= or its
// # syntax= frontend.
type imageUse struct {
	Ref  string // expanded with the Dockerfile's ARG defaults; empty when it needs a build argument
	Word string // as written
	What string // "FROM", "COPY --from", "RUN --mount from", "# syntax"
	Line int
}

func (u imageUse) String() string { return fmt.Sprintf("line %d: %s %s", u.Line, u.What, u.Word) }

// urlUse is an ADD source fetched from the network (HTTP or git), or one that cannot be told.
type urlUse struct {
	URL  string
	Host string // the host it reaches
	Line int
	// Unchecked says why the source cannot be read before the build (a variable the Dockerfile
	// does not set, an ONBUILD instruction that does not parse); such a source is refused.
	Unchecked string
}

// sources are what a Dockerfile fetches.
type sources struct {
	Images []imageUse
	URLs   []urlUse
	// Heredocs are the lines of instructions with a heredoc (RUN <<EOF), which only a BuildKit
	// of 0.10 or later reads: an older frontend takes their lines for instructions.
	Heredocs []int
}

// HeredocError is a heredoc given to a builder whose Dockerfile frontend does not read them.
type HeredocError struct{ Line int }

func (e *HeredocError) Error() string {
	return fmt.Sprintf("Dockerfile line %d: a heredoc (<<): the Docker Engine's BuildKit does not read heredocs and would run their lines as instructions; write the lines as a RUN or COPY a file (or use the buildkit builder)", e.Line)
}

// refuseHeredocs is the docker builder's check: the engine's builtin frontend would build, from
// a heredoc's lines, instructions none of the checks here read.
func refuseHeredocs(srcs sources) error {
	if len(srcs.Heredocs) > 0 {
		return &HeredocError{Line: srcs.Heredocs[0]}
	}
	return nil
}

// readSources lists the images and URLs of every stage (not only those the target needs: a
// stage skipped today is one ARG away from running).
func readSources(d *dockerfile.Dockerfile) sources {
	var out sources
	if ref, _, loc, ok := parser.DetectSyntax(d.Source); ok {
		out.Images = append(out.Images, imageUse{Ref: ref, Word: ref, What: "# syntax", Line: firstLine(loc)})
	}
	for _, node := range d.AST.AST.Children {
		heredoc := len(node.Heredocs) > 0
		if node.Next != nil {
			for _, inner := range node.Next.Children { // ONBUILD's instruction
				heredoc = heredoc || len(inner.Heredocs) > 0
			}
		}
		if heredoc {
			out.Heredocs = append(out.Heredocs, node.StartLine)
		}
	}
	global := d.Global(nil)
	isStage := func(word string, before int) bool {
		if n, err := strconv.Atoi(word); err == nil {
			return n >= 0 && n < before
		}
		for j := 0; j < before; j++ {
			if strings.EqualFold(d.Stages[j].Name, word) {
				return true
			}
		}
		return false
	}
	image := func(word string, s dockerfile.Scope, what string, line int) {
		ref, known := expandKnown(d, word, s)
		if known && (strings.EqualFold(ref, "scratch") || ref == "") {
			return
		}
		if !known {
			ref = ""
		}
		out.Images = append(out.Images, imageUse{Ref: ref, Word: word, What: what, Line: line})
	}
	// set[i] is what stage i leaves to the stages built FROM it (BuildKit carries a stage's ARGs
	// and ENV to them): the values its chain's ENV and ARG with a value set. external[i]: its
	// chain starts from an image (not scratch), whose config may set any other variable.
	set := make([]map[string]string, len(d.Stages))
	external := make([]bool, len(d.Stages))
	for i, st := range d.Stages {
		set[i] = map[string]string{}
		scope := dockerfile.NewScope() // a stage sees the ARGs it declares: a word using others is unknown
		if b := d.Base(i, global); b >= 0 {
			maps.Copy(set[i], set[b])
			external[i] = external[b]
		} else {
			image(st.BaseName, global, "FROM", firstLine(st.Location))
			base, known := expandKnown(d, st.BaseName, global)
			external[i] = !known || !strings.EqualFold(base, "scratch")
		}
		for k, v := range set[i] {
			scope.Set(k, v)
		}
		// add reads an ADD's sources: a URL, or one whose value the Dockerfile cannot tell.
		add := func(c *instructions.AddCommand, scope dockerfile.Scope, set map[string]string, line int) {
			for _, src := range c.SourcePaths {
				if vars := unresolved(d, src, scope, set, external[i]); len(vars) > 0 {
					out.URLs = append(out.URLs, urlUse{URL: "ADD " + src, Line: line, Unchecked: "its value depends on " + strings.Join(vars, ", ") + ", which the Dockerfile itself does not set"})
				} else if u, ok := networkSource(d.Expand(src, scope)); ok {
					u.Line = line
					out.URLs = append(out.URLs, u)
				}
			}
		}
		command := func(c instructions.Command, scope dockerfile.Scope, set map[string]string, line int) {
			switch c := c.(type) {
			case *instructions.CopyCommand:
				if from := d.Expand(c.From, scope); c.From != "" && !isStage(from, i) {
					image(c.From, scope, "COPY --from", line)
				}
			case *instructions.RunCommand:
				for _, m := range instructions.GetMounts(c) {
					if from := d.Expand(m.From, scope); m.From != "" && !isStage(from, i) {
						image(m.From, scope, "RUN --mount from", line)
					}
				}
			case *instructions.AddCommand:
				add(c, scope, set, line)
			}
		}
		var onbuild []*instructions.OnbuildCommand
		for _, c := range st.Commands {
			switch c := c.(type) {
			case *instructions.ArgCommand:
				d.Declare(scope, c, global, nil)
				for _, kv := range c.Args {
					// An ARG without a value (here or before the first FROM) leaves the image's ENV.
					if _, ok := global.Get(kv.Key); kv.Value != nil || (ok && !global.Unset(kv.Key)) {
						set[i][kv.Key], _ = scope.Get(kv.Key)
					}
				}
				// The engine's older frontend expands a stage ARG line's values before it sets any,
				// BuildKit's own one after another: a value reading a name set earlier on the same
				// line has no one value, so it is not known.
				for _, k := range readsItsOwnLine(d, c, scope) {
					scope.Forget(k)
					delete(set[i], k)
				}
			case *instructions.EnvCommand:
				// Every value of an ENV line is expanded with the values from before the line, as
				// both frontends do (ENV A=x U=$A gives U the earlier A).
				values := make([]string, len(c.Env))
				for j, kv := range c.Env {
					values[j] = d.Expand(kv.Value, scope)
				}
				for j, kv := range c.Env {
					scope.Set(kv.Key, values[j])
					set[i][kv.Key] = values[j]
				}
			case *instructions.OnbuildCommand:
				onbuild = append(onbuild, c)
			default:
				command(c, scope, set[i], firstLine(c.Location()))
			}
		}
		// An ONBUILD instruction runs first in every stage built FROM this one, which starts with
		// what this stage set: it is read there.
		for _, c := range onbuild {
			line := firstLine(c.Location())
			inner, err := onbuildCommand(c.Expression)
			if err != nil {
				out.URLs = append(out.URLs, urlUse{URL: "ONBUILD " + c.Expression, Line: line, Unchecked: "its instruction cannot be read: " + err.Error()})
				continue
			}
			child := dockerfile.NewScope()
			for k, v := range set[i] {
				child.Set(k, v)
			}
			command(inner, child, set[i], line)
		}
	}
	return out
}

// readsItsOwnLine are the names of an ARG line whose value reads a name set earlier on that line.
func readsItsOwnLine(d *dockerfile.Dockerfile, c *instructions.ArgCommand, s dockerfile.Scope) []string {
	var out []string
	earlier := map[string]bool{}
	for _, kv := range c.Args {
		if kv.Value != nil && strings.Contains(*kv.Value, "$") {
			r, err := d.ExpandMatches(*kv.Value, s)
			if err != nil {
				out = append(out, kv.Key)
			} else {
				for v := range r.Matched {
					if earlier[v] {
						out = append(out, kv.Key)
						break
					}
				}
			}
		}
		earlier[kv.Key] = true
	}
	return out
}

// onbuildCommand parses an ONBUILD's instruction as the stage built FROM it will.
func onbuildCommand(expr string) (instructions.Command, error) {
	res, err := parser.Parse(strings.NewReader(expr))
	if err != nil {
		return nil, err
	}
	if len(res.AST.Children) != 1 {
		return nil, fmt.Errorf("%d instructions", len(res.AST.Children))
	}
	return instructions.ParseCommand(res.AST.Children[0])
}

// unresolved are the variables word uses whose value the Dockerfile cannot tell: not in scope,
// or, in a stage that starts from an image, not set with a value by the Dockerfile's ENV or ARG
// (the image's config may set it).
func unresolved(d *dockerfile.Dockerfile, word string, s dockerfile.Scope, set map[string]string, fromImage bool) []string {
	if !strings.Contains(word, "$") {
		return nil
	}
	r, err := d.ExpandMatches(word, s)
	if err != nil {
		return []string{"a word that does not expand"}
	}
	var out []string
	for v := range r.Unmatched {
		out = append(out, "$"+v)
	}
	for v := range r.Matched {
		if _, ok := set[v]; fromImage && !ok {
			out = append(out, "$"+v)
		}
	}
	slices.Sort(out)
	return out
}

// expandKnown expands word; false when it uses a variable s does not hold or holds without a
// value (known only with a build argument).
func expandKnown(d *dockerfile.Dockerfile, word string, s dockerfile.Scope) (string, bool) {
	r, err := d.ExpandMatches(word, s)
	if err != nil || len(r.Unmatched) > 0 {
		return "", false
	}
	for v := range r.Matched {
		if s.Unset(v) {
			return "", false
		}
	}
	return r.Result, true
}

func firstLine(loc []parser.Range) int {
	if len(loc) == 0 {
		return 0
	}
	return loc[0].Start.Line
}

// networkSource tells whether an ADD source is fetched from the network (an HTTP URL or a git
// repository, as BuildKit tells them), and which host it reaches.
func networkSource(src string) (urlUse, bool) {
	if ref, isGit, _ := dfgitutil.ParseGitRef(src); ref != nil && isGit {
		if u, err := gitutil.ParseURL(ref.Remote); err == nil {
			return urlUse{URL: src, Host: u.Host}, true
		}
		return urlUse{URL: src}, true // no host we can tell: refused unless opted in
	}
	if lower := strings.ToLower(src); strings.HasPrefix(lower, "http://") || strings.HasPrefix(lower, "https://") {
		if u, err := url.Parse(src); err == nil {
			return urlUse{URL: src, Host: u.Host}, true
		}
		return urlUse{URL: src}, true
	}
	return urlUse{}, false
}

// PrivateURLError is an ADD source that reaches serve's own networks.
type PrivateURLError struct {
	Line  int
	URL   string
	Addr  string // the address its host resolved to; empty when the host could not be told
	OptIn string // the operator's opt-in that allows it (Trust.PrivateURLsName)
}

func (e *PrivateURLError) Error() string {
	if e.Addr == "" {
		return fmt.Sprintf("Dockerfile line %d: ADD %s: its host cannot be told, and sources may not reach this server's networks%s", e.Line, e.URL, optIn(e.OptIn))
	}
	return fmt.Sprintf("Dockerfile line %d: ADD %s reaches %s, a loopback, link-local, private or multicast address, or an address of this server's networks: refused%s", e.Line, e.URL, e.Addr, optIn(e.OptIn))
}

// UncheckedSourceError is an ADD source the checks here cannot read before the build: what it
// fetches would be known only to the builder.
type UncheckedSourceError struct {
	Line        int
	Source, Why string
	OptIn       string // the setting that lifts the refusal (SERVE_ALLOW_PRIVATE_URLS=true), as the operator names it
}

func (e *UncheckedSourceError) Error() string {
	return fmt.Sprintf("Dockerfile line %d: %s: %s, so what it fetches cannot be checked before the build: refused (write the source out, or set its variables with ENV, or ARG with a value, in the Dockerfile)%s", e.Line, e.Source, e.Why, optIn(e.OptIn))
}

// checkURLs refuses an ADD source whose host is, or resolves to, a loopback, link-local,
// private, unspecified or multicast address, or one of local (this machine's own interface
// addresses, whatever their range). A host that does not resolve here is left to the builder,
// which cannot reach it either.
func checkURLs(ctx context.Context, urls []urlUse, resolve func(ctx context.Context, host string) ([]netip.Addr, error), local []netip.Addr) error {
	for _, u := range urls {
		if u.Unchecked != "" {
			return &UncheckedSourceError{Line: u.Line, Source: u.URL, Why: u.Unchecked}
		}
		host := u.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		host = strings.Trim(host, "[]")
		if host == "" {
			return &PrivateURLError{Line: u.Line, URL: u.URL}
		}
		addrs, err := resolve(ctx, host)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			continue
		}
		for _, a := range addrs {
			if ownNetwork(a) || slices.Contains(local, a.Unmap()) {
				return &PrivateURLError{Line: u.Line, URL: u.URL, Addr: a.String()}
			}
		}
	}
	return nil
}

// ownNetwork reports whether a is an address of this machine or its private networks.
func ownNetwork(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsMulticast() ||
		a.IsUnspecified() || cgnat.Contains(a)
}

// interfaceAddrs are the addresses assigned to this machine's interfaces (a public address on
// eth0 reaches serve's host as surely as 127.0.0.1 does); an error leaves the ranges alone.
func interfaceAddrs() []netip.Addr {
	nets, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, n := range nets {
		if p, err := netip.ParsePrefix(n.String()); err == nil {
			out = append(out, p.Addr().Unmap())
		}
	}
	return out
}

// cgnat is the shared address space (RFC 6598) that carriers and cloud VPCs use privately.
var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// resolveHost is the system resolver's answer for host (an IP literal is itself).
func resolveHost(ctx context.Context, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a}, nil
	}
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}

// FrontendError is a # syntax= directive naming a frontend other than Docker's own: a frontend
// is code of the build's choosing, which could fetch what the checks here keep out.
type FrontendError struct {
	Line int
	Ref  string
}

func (e *FrontendError) Error() string {
	return fmt.Sprintf("Dockerfile line %d: # syntax=%s: only Docker's own Dockerfile frontend (docker/dockerfile) runs here; remove the line to use the builder's", e.Line, e.Ref)
}

// checkFrontend refuses a # syntax= frontend other than docker/dockerfile (any version). It
// reads the directive alone, as BuildKit does before any parse: a frontend of its own may
// take a Dockerfile no other parser reads.
func checkFrontend(src []byte) error {
	ref, _, loc, ok := parser.DetectSyntax(src)
	if !ok {
		return nil
	}
	if r, err := name.ParseReference(ref); err != nil || r.Context().Name() != "index.docker.io/docker/dockerfile" {
		return &FrontendError{Line: firstLine(loc), Ref: ref}
	}
	return nil
}

// OnBuildError is a base image with ONBUILD triggers: they would run in this build unread by
// the checks here.
type OnBuildError struct {
	Use      imageUse
	Triggers []string
}

func (e *OnBuildError) Error() string {
	return fmt.Sprintf("Dockerfile %s: the image has ONBUILD triggers (%s), which this server does not run", e.Use, strings.Join(e.Triggers, "; "))
}

// checkOnBuild refuses a FROM base whose registry says it has ONBUILD triggers; the registry
// of the prefix is asked with serve's credentials, any other anonymously. A base its registry
// does not describe here is left to the builder (which fails to pull it, or, for images under
// the prefix only the engine holds, the docker builder inspects it there).
func checkOnBuild(ctx context.Context, uses []imageUse, trust Trust) error {
	for _, u := range uses {
		if u.What != "FROM" || u.Ref == "" {
			continue
		}
		ref, err := name.ParseReference(u.Ref)
		if err != nil {
			continue
		}
		asked, cancel := context.WithTimeout(ctx, 20*time.Second)
		opts := []remote.Option{remote.WithContext(asked), remote.WithTransport(loopbackHTTPOnly{remote.DefaultTransport})}
		if trust.Under(u.Ref) {
			opts = registryOptions(asked)
		}
		var cfg *v1.ConfigFile
		img, err := remote.Image(ref, opts...)
		if err == nil {
			cfg, err = img.ConfigFile()
		}
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err == nil && len(cfg.Config.OnBuild) > 0 {
			return &OnBuildError{Use: u, Triggers: cfg.Config.OnBuild}
		}
	}
	return nil
}
