package server

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
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

// urlUse is an ADD source fetched from the network (HTTP or git).
type urlUse struct {
	URL  string
	Host string // the host it reaches
	Line int
}

// sources are what a Dockerfile fetches.
type sources struct {
	Images []imageUse
	URLs   []urlUse
}

// readSources lists the images and URLs of every stage (not only those the target needs: a
// stage skipped today is one ARG away from running).
func readSources(d *dockerfile.Dockerfile) sources {
	var out sources
	if ref, _, loc, ok := parser.DetectSyntax(d.Source); ok {
		out.Images = append(out.Images, imageUse{Ref: ref, Word: ref, What: "# syntax", Line: firstLine(loc)})
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
	for i, st := range d.Stages {
		if d.Base(i, global) < 0 {
			image(st.BaseName, global, "FROM", firstLine(st.Location))
		}
		scope := dockerfile.NewScope() // a stage sees the ARGs it declares: a word using others is unknown
		for _, c := range st.Commands {
			line := firstLine(c.Location())
			switch c := c.(type) {
			case *instructions.ArgCommand:
				d.Declare(scope, c, global, nil)
			case *instructions.EnvCommand:
				for _, kv := range c.Env {
					scope.Set(kv.Key, d.Expand(kv.Value, scope))
				}
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
				for _, src := range c.SourcePaths {
					if u, ok := networkSource(d.Expand(src, scope)); ok {
						u.Line = line
						out.URLs = append(out.URLs, u)
					}
				}
			}
		}
	}
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
	return fmt.Sprintf("Dockerfile line %d: ADD %s reaches %s, a loopback, link-local or private address of this server's networks: refused%s", e.Line, e.URL, e.Addr, optIn(e.OptIn))
}

// checkURLs refuses an ADD source whose host is, or resolves to, a loopback, link-local,
// private or unspecified address. A host that does not resolve here is left to the builder,
// which cannot reach it either.
func checkURLs(ctx context.Context, urls []urlUse, resolve func(ctx context.Context, host string) ([]netip.Addr, error)) error {
	for _, u := range urls {
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
			if ownNetwork(a) {
				return &PrivateURLError{Line: u.Line, URL: u.URL, Addr: a.String()}
			}
		}
	}
	return nil
}

// ownNetwork reports whether a is an address of this machine or its private networks.
func ownNetwork(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsUnspecified() || a.IsInterfaceLocalMulticast() || cgnat.Contains(a)
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
