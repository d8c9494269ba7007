package server

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/runtimebuild/runtimebuild/internal/dockerfile"
)

func parse(t *testing.T, src string) *dockerfile.Dockerfile {
	t.Helper()
	d, err := dockerfile.Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestTheImagesADockerfileReadsAreFoundWithTheirLines(t *testing.T) {
	src := `# syntax=example.test/frontend:1
ARG BASE=team/base:1
ARG LATER
FROM ${BASE} AS build
COPY --from=other/tool:2 /bin/tool /bin/
RUN --mount=type=bind,from=secret/app:1,target=/s cat /s/x
FROM scratch AS two
COPY --from=build /x /x
COPY --from=0 /y /y
FROM $LATER
FROM build
RUN --mount=type=cache,target=/c,from=build true
`
	got := readSources(parse(t, src))
	want := []string{
		"line 1: # syntax example.test/frontend:1 -> example.test/frontend:1",
		"line 4: FROM ${BASE} -> team/base:1",
		"line 5: COPY --from other/tool:2 -> other/tool:2",
		"line 6: RUN --mount from secret/app:1 -> secret/app:1",
		"line 10: FROM $LATER -> ",
	}
	var lines []string
	for _, u := range got.Images {
		lines = append(lines, u.String()+" -> "+u.Ref)
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("images:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

func TestADDSourcesOnTheNetworkAreFoundAndPrivateOnesRefused(t *testing.T) {
	src := "FROM scratch\nARG PORT=8080\nADD http://127.0.0.1:${PORT}/secret.txt /s\nADD https://example.test/pub.txt /p\nADD git@internal.test:org/repo.git /r\nADD local.txt /l\n"
	srcs := readSources(parse(t, src))
	var got []string
	for _, u := range srcs.URLs {
		got = append(got, u.URL+" "+u.Host)
	}
	if want := "http://127.0.0.1:8080/secret.txt 127.0.0.1:8080|https://example.test/pub.txt example.test|git@internal.test:org/repo.git internal.test"; strings.Join(got, "|") != want {
		t.Fatalf("URLs %q, want %q", strings.Join(got, "|"), want)
	}
	resolve := func(_ context.Context, host string) ([]netip.Addr, error) {
		switch host {
		case "example.test":
			return []netip.Addr{netip.MustParseAddr("93.184.216.34")}, nil
		case "internal.test":
			return []netip.Addr{netip.MustParseAddr("10.1.2.3")}, nil
		}
		return []netip.Addr{netip.MustParseAddr(host)}, nil
	}
	err := checkURLs(context.Background(), srcs.URLs, resolve, nil)
	var pe *PrivateURLError
	if !errors.As(err, &pe) || pe.Line != 3 || !strings.Contains(err.Error(), "Dockerfile line 3: ADD http://127.0.0.1:8080/secret.txt reaches 127.0.0.1") {
		t.Fatalf("err = %v, want line 3 refused", err)
	}
	if err := checkURLs(context.Background(), srcs.URLs[1:], resolve, nil); !errors.As(err, &pe) || pe.Line != 5 || pe.Addr != "10.1.2.3" {
		t.Fatalf("a git host resolving to a private address: %v", err)
	}
	if err := checkURLs(context.Background(), srcs.URLs[1:2], resolve, nil); err != nil {
		t.Fatalf("a public host: %v", err)
	}
	for _, a := range []string{"169.254.169.254", "::1", "fe80::1", "0.0.0.0", "::", "192.168.1.1", "172.17.0.1", "100.64.0.1", "::ffff:127.0.0.1", "224.0.0.1", "239.1.2.3", "ff02::1"} {
		if !ownNetwork(netip.MustParseAddr(a)) {
			t.Errorf("%s is not counted as this server's network", a)
		}
	}
}

// Issue 17, E: an address assigned to this machine's interfaces reaches serve's host whatever
// its range (192.0.2.2 on eth0 served a secret).
func TestADDToThisMachinesOwnAddressesIsRefused(t *testing.T) {
	src := "FROM scratch\nADD http://192.0.2.2:8080/secret /s\nADD http://own.test/x /x\n"
	srcs := readSources(parse(t, src))
	resolve := func(_ context.Context, host string) ([]netip.Addr, error) {
		if host == "own.test" {
			return []netip.Addr{netip.MustParseAddr("198.51.100.7")}, nil
		}
		return []netip.Addr{netip.MustParseAddr(host)}, nil
	}
	if err := checkURLs(context.Background(), srcs.URLs, resolve, nil); err != nil {
		t.Fatalf("public addresses of other machines: %v", err)
	}
	var pe *PrivateURLError
	local := []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("198.51.100.7")}
	if err := checkURLs(context.Background(), srcs.URLs, resolve, local); !errors.As(err, &pe) || pe.Line != 2 || pe.Addr != "192.0.2.2" {
		t.Fatalf("this machine's own address: %v, want line 2 refused", err)
	}
	if err := checkURLs(context.Background(), srcs.URLs[1:], resolve, local); !errors.As(err, &pe) || pe.Line != 3 {
		t.Fatalf("a host resolving to this machine's own address: %v, want line 3 refused", err)
	}
	found := false
	for _, a := range interfaceAddrs() {
		found = found || a.IsLoopback()
	}
	if !found {
		t.Fatalf("interfaceAddrs %v lists no loopback address: not this machine's interfaces", interfaceAddrs())
	}
}

func TestCacheMountsGetTheirRepositorysID(t *testing.T) {
	src := "FROM scratch\nRUN --mount=type=cache,target=/root/.cache \\\n    --mount=type=bind,source=a,target=/a \\\n    --mount=type=cache,id=shared,target=/x,sharing=locked true\nRUN --mount=type=secret,id=s true\n"
	d := parse(t, src)
	out, err := isolateCacheMounts([]byte(src), d, "localhost/runtime/app")
	if err != nil {
		t.Fatal(err)
	}
	ns := cacheNamespace("localhost/runtime/app")
	want := "FROM scratch\nRUN --mount=type=cache,target=/root/.cache,id=" + ns + "-/root/.cache \\\n    --mount=type=bind,source=a,target=/a \\\n    --mount=type=cache,target=/x,sharing=locked,id=" + ns + "-shared true\nRUN --mount=type=secret,id=s true\n"
	if string(out) != want {
		t.Fatalf("rewritten:\n%s\nwant:\n%s", out, want)
	}
	quoted := "FROM scratch\nRUN --mount=\"type=cache,target=/c\" true\n"
	if _, err := isolateCacheMounts([]byte(quoted), parse(t, quoted), "r"); err != nil {
		var ce *CacheMountError
		if !errors.As(err, &ce) || ce.Line != 2 {
			t.Fatalf("a quoted cache mount: %v", err)
		}
	}
}

// Issue 17, C: a copy of the flag in a comment line of the continuation, an ONBUILD RUN, and
// ids that would meet were the repository written out.
func TestCacheMountsAreIsolatedWhateverTheirText(t *testing.T) {
	hidden := "FROM scratch\nRUN \\\n# --mount=type=cache,target=/c\n --mount=type=cache,target=/c true\n"
	out, err := isolateCacheMounts([]byte(hidden), parse(t, hidden), "r")
	if want := "FROM scratch\nRUN \\\n# --mount=type=cache,target=/c\n --mount=type=cache,target=/c,id=" + cacheNamespace("r") + "-/c true\n"; err != nil || string(out) != want {
		t.Fatalf("a cache mount copied into a comment of its continuation: %v\n%s\nwant the real mount rewritten:\n%s", err, out, want)
	}
	var ce *CacheMountError
	twice := "FROM scratch\nRUN --mount=type=cache,target=/c echo --mount=type=cache,target=/c\n"
	if _, err := isolateCacheMounts([]byte(twice), parse(t, twice), "r"); !errors.As(err, &ce) {
		t.Fatalf("a cache mount written twice: %v, want refused", err)
	}
	onbuild := "FROM scratch AS a\nONBUILD RUN --mount=type=cache,target=/c true\nFROM a\n"
	out, err = isolateCacheMounts([]byte(onbuild), parse(t, onbuild), "r")
	if want := "ONBUILD RUN --mount=type=cache,target=/c,id=" + cacheNamespace("r") + "-/c true"; err != nil || !strings.Contains(string(out), want) {
		t.Fatalf("ONBUILD RUN: %v\n%s\nwant %s", err, out, want)
	}
	a, _ := cacheMountID("type=cache,target=/t,id=x/k", "adv17/ca")
	b, _ := cacheMountID("type=cache,target=/t,id=k", "adv17/ca/x")
	if a == b {
		t.Fatalf("two repositories' ids meet: %s", a)
	}
}

func TestNamesAreUnderThePrefixByRepositoryPath(t *testing.T) {
	tr := Trust{Prefix: "localhost/runtime"}
	for ref, want := range map[string]bool{
		"localhost/runtime/app:1": true, "localhost/runtime/a/b@sha256:" + strings.Repeat("a", 64): true,
		"localhost/runtime:1": false, "localhost/runtime-x/app:1": false, "busybox": false, "docker.io/runtime/app": false,
		// Issue 17, D: names a registry would normalise into another repository.
		"localhost/runtime/../other/app": false, "localhost/runtime/./app": false, "localhost/runtime//app": false,
		"localhost/runtime/a/..": false, "localhost/runtime/App": false,
	} {
		if got := tr.Under(ref); got != want {
			t.Errorf("Under(%s) = %v, want %v", ref, got, want)
		}
	}
	hub := Trust{Prefix: "docker.io/team"}
	if !hub.Under("team/app:1") || !hub.Under("index.docker.io/team/app") || hub.Under("other/app") {
		t.Error("a Docker Hub prefix does not normalise as the engine does")
	}
	if reg := (Trust{Prefix: "127.0.0.1:5000"}); !reg.Under("127.0.0.1:5000/any/app:1") || reg.Registry() != "127.0.0.1:5000" {
		t.Error("a prefix that is a registry alone")
	}
}

func TestOnlyDockersOwnFrontendRuns(t *testing.T) {
	for src, ok := range map[string]bool{
		"FROM scratch\n": true,
		"# syntax=docker/dockerfile:1\nFROM scratch\n":                                                    true,
		"# syntax=docker.io/docker/dockerfile:1.7@sha256:" + strings.Repeat("a", 64) + "\nFROM scratch\n": true,
		"# syntax=example.test/evil/frontend:1\nFROM scratch\n":                                           false,
		"# syntax=localhost/runtime/frontend:1\nanything a frontend of its own would read\n":              false,
		"# escape=`\n# syntax=docker/dockerfile-upstream:master\nFROM scratch\n":                          false,
	} {
		err := checkFrontend([]byte(src))
		var fe *FrontendError
		if ok != (err == nil) || (!ok && !errors.As(err, &fe)) {
			t.Errorf("%q: %v, want accepted %v", src, err, ok)
		}
	}
}

// Issue 17, B: the engine's frontend runs a heredoc's lines as instructions (here an ADD to
// loopback that BuildKit 0.27's parser reads as the heredoc's text): the docker builder refuses
// any heredoc, naming its line.
func TestHeredocsAreFoundForTheDockerBuilderToRefuse(t *testing.T) {
	src := "FROM scratch\nRUN true\nRUN <<sdir\nADD http://127.0.0.1:9/secret \\\nsdir\nCOPY <<EOF /x\nhi\nEOF\n"
	srcs := readSources(parse(t, src))
	if len(srcs.URLs) != 0 {
		t.Fatalf("BuildKit 0.27's parser read the heredoc's ADD: %v", srcs.URLs)
	}
	var he *HeredocError
	if err := refuseHeredocs(srcs); !errors.As(err, &he) || he.Line != 3 || len(srcs.Heredocs) != 2 || srcs.Heredocs[1] != 6 {
		t.Fatalf("heredocs %v: %v, want lines 3 and 6, line 3 refused", srcs.Heredocs, err)
	}
	plain := "FROM scratch\nRUN echo '<<not a heredoc'\n"
	if err := refuseHeredocs(readSources(parse(t, plain))); err != nil {
		t.Fatalf("no heredoc: %v", err)
	}
}

// Issue 17, A: ADD sources whose value the static check could not see: ENV set in an earlier
// stage, a variable only the base image's config sets, ONBUILD ADD in the Dockerfile itself.
func TestADDThroughVariablesAndONBUILDIsChecked(t *testing.T) {
	loopback := func(_ context.Context, host string) ([]netip.Addr, error) {
		if a, err := netip.ParseAddr(host); err == nil {
			return []netip.Addr{a}, nil
		}
		return []netip.Addr{netip.MustParseAddr("93.184.216.34")}, nil
	}
	tests := []struct{ name, src, refused string }{
		{"ENV of an earlier stage", "FROM scratch AS a\nENV U=http://127.0.0.1:9/secret\nFROM a\nADD $U /s\n", "Dockerfile line 4: ADD http://127.0.0.1:9/secret reaches 127.0.0.1"},
		{"ENV of a stage two stages up", "FROM scratch AS a\nENV U=http://127.0.0.1:9/secret\nFROM a AS b\nFROM b\nADD ${U} /s\n", "Dockerfile line 5: ADD http://127.0.0.1:9/secret reaches"},
		{"ARG of an earlier stage", "FROM scratch AS a\nARG U=http://127.0.0.1:9/secret\nFROM a\nADD $U /s\n", "Dockerfile line 4: ADD http://127.0.0.1:9/secret reaches"},
		{"a variable the base image sets", "FROM example.test/base:1\nADD $U /s\n", "Dockerfile line 2: ADD $U: its value depends on $U, which the Dockerfile itself does not set"},
		{"an ARG without a value over a base image", "FROM example.test/base:1\nARG U\nADD $U /s\n", "Dockerfile line 3: ADD $U: its value depends on $U"},
		{"ONBUILD ADD in the Dockerfile", "FROM scratch AS a\nONBUILD ADD http://127.0.0.1:9/secret /s\nFROM a\n", "Dockerfile line 2: ADD http://127.0.0.1:9/secret reaches"},
		{"ONBUILD ADD of an ENV set after it", "FROM scratch AS a\nENV U=http://example.test/\nONBUILD ADD $U /s\nENV U=http://127.0.0.1:9/secret\nFROM a\n", "Dockerfile line 3: ADD http://127.0.0.1:9/secret reaches"},
		{"ONBUILD ADD of a base image's variable", "FROM example.test/base:1 AS a\nONBUILD ADD $U /s\nFROM a\n", "Dockerfile line 2: ADD $U: its value depends on $U"},
		// Both frontends expand an ENV line's values with the values from before the line.
		{"ENV reading a name its own line sets", "FROM scratch\nENV A=http://127.0.0.1:9/secret\nENV A=http://example.test/s U=$A\nADD $U /s\n", "Dockerfile line 4: ADD http://127.0.0.1:9/secret reaches"},
		// The engine's frontend expands a stage ARG line before it sets any name; BuildKit's own
		// one after another: no one value, so not known.
		{"ARG reading a name its own line sets", "FROM scratch\nARG A=http://127.0.0.1:9/secret\nARG A=http://example.test/s U=$A\nADD $U /s\n", "Dockerfile line 4: ADD $U: its value depends on $U"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkURLs(context.Background(), readSources(parse(t, tt.src)).URLs, loopback, nil)
			if err == nil || !strings.Contains(err.Error(), tt.refused) {
				t.Fatalf("%v, want %q", err, tt.refused)
			}
		})
	}
	for _, ok := range []string{
		"FROM example.test/base:1\nARG V=1.2\nADD https://example.test/v${V}/x.tgz /x\n",
		"FROM example.test/base:1\nENV D=/src\nADD ${D}/local.txt /l\n",
		"FROM scratch\nARG U\nADD ${U}local.txt /l\n",
		"FROM scratch AS a\nONBUILD COPY x /x\nONBUILD RUN true\nFROM a\n",
	} {
		if err := checkURLs(context.Background(), readSources(parse(t, ok)).URLs, loopback, nil); err != nil {
			t.Errorf("%q: %v, want accepted", ok, err)
		}
	}
	if srcs := readSources(parse(t, "FROM scratch AS a\nONBUILD COPY --from=example.test/tool:1 /t /t\nFROM a\n")); len(srcs.Images) != 1 || srcs.Images[0].Ref != "example.test/tool:1" || srcs.Images[0].Line != 2 {
		t.Fatalf("ONBUILD COPY --from an image: %v, want the image read at line 2", srcs.Images)
	}
}
