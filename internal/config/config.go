// Package config reads the environment once into the settings of one target: Sections says which
// parts (Pack, API, Send, Export, Serve, Output) each target reads, and Reads lists their variables.
package config

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/runtimebuild/runtimebuild/internal/exitcode"
	"github.com/runtimebuild/runtimebuild/internal/imagename"
)

// Targets are the build targets of the generated Dockerfile, in the order the contract lists them.
var Targets = []string{"binary", "binary-minimal", "source", "source-minimal"}

// DefaultTarget is TARGET when it is not set: the target whose names carry no suffix.
const DefaultTarget = imagename.DefaultTarget

// TemplateBaseImage is the base image of the built-in template when BASE_IMAGE is not set (a
// Dockerfile of the source keeps its own default).
const TemplateBaseImage = "nikolaik/python-nodejs:python3.12-nodejs22"

// The DOCKERFILE values that are not paths.
const (
	DockerfileAuto      = "auto"      // the root Dockerfile, else the agent server's, else the template
	DockerfileGenerated = "generated" // the template
)

// BuildArg is one NAME=VALUE of BUILD_ARGS.
type BuildArg struct{ Name, Value string }

// Pack is what packing reads (context, validate, and the packing half of upload and all).
type Pack struct {
	SourceDir        string // empty: the top of the git work tree holding the current directory, else "."
	OutputDir        string
	OutputName       string // empty: {IMAGE_NAME}-{SHORT_SHA}-{PRIMARY_TAG}[-{TARGET}].tar.gz
	ImageName        string
	BaseImage        string // empty: the Dockerfile's own default (the template's: TemplateBaseImage)
	BuildArgs        []BuildArg
	Target           string
	TargetSet        bool     // TARGET was given (else a Dockerfile without a binary stage builds its last one)
	Tags             []string // CUSTOM_TAGS; Tags[0] is the primary tag
	GitRef           string   // SDK_REF, else GITHUB_REF (as SDK_SHA before GITHUB_SHA); empty: the current branch
	CleanOutput      bool
	SHAOverride      string // SDK_SHA, else GITHUB_SHA
	SourceDateEpoch  *int64 // nil: HEAD's commit time
	Include          []string
	IncludeUntracked bool
	AllowSecrets     []string
	Dockerfile       string // DockerfileAuto, DockerfileGenerated, or a path inside SOURCE_DIR
	DockerfileTmpl   string
	TargetImage      string // names the image; its tag is the primary tag
}

// PrimaryTag is the first of CUSTOM_TAGS.
func (p Pack) PrimaryTag() string { return p.Tags[0] }

// API is how to reach the Runtime API and how long to follow a build.
type API struct {
	URL               string // RUNTIME_API_URL; the client validates it, once (runtimeapi.New)
	Key               string // RUNTIME_API_KEY
	AllowInsecureHTTP bool
	PollInterval      time.Duration
	BuildTimeout      time.Duration
}

// Send is how upload sends a packed archive.
type Send struct {
	UploadFormat string
	NoUpload     bool // NO_UPLOAD, read by all only: pack, and skip the upload
	Force        bool
}

// Export is what image reads besides the Runtime API.
type Export struct {
	Source      string // IMAGE_SOURCE
	Platform    string
	Pull        bool
	TargetImage string // empty: the reference exported
	OutputDir   string // where the exported image waits while it is sent
	Engine      Engine // the engine the docker source exports from
}

// Serve is what serve reads. A zero Workers, BuildTimeout or MaxUpload leaves the default to
// server.New, the one place that keeps them.
type Serve struct {
	Addr         string
	Builder      string // docker, buildkit, check
	Key          string // RUNTIME_API_KEY: the key clients must send
	NoAuth       bool
	RemoteNoAuth bool // SERVE_ALLOW_REMOTE_NO_AUTH: SERVE_NO_AUTH on an address beyond loopback
	Registry     string
	Workers      int
	BuildTimeout time.Duration
	MaxUpload    int64
	// The trust boundary's opt-ins, the docker builder's cache bound, the build records' home
	// and the buildkit builder's cache and platforms.
	LocalImages      bool     // SERVE_LOCAL_IMAGES
	AllowPrivateURLs bool     // SERVE_ALLOW_PRIVATE_URLS
	CacheMax         int64    // SERVE_CACHE_MAX: bytes of BuildKit cache serve's builds keep in the engine
	StateDir         string   // SERVE_STATE_DIR; empty: the records' default directory
	StateHome        string   // XDG_STATE_HOME: where that default directory lies
	CacheMode        string   // SERVE_CACHE_MODE: max, min, off
	Platforms        []string // SERVE_PLATFORMS; empty: the daemon's own

	// SERVE_BUILDER=buildkit's daemon, and the engine SERVE_BUILDER=docker reaches (as the docker CLI reads it).
	BuildkitHost      string // BUILDKIT_HOST
	BuildkitTLSCACert string // BUILDKIT_TLS_CA_CERT
	BuildkitTLSCert   string // BUILDKIT_TLS_CERT
	BuildkitTLSKey    string // BUILDKIT_TLS_KEY
	BuildkitTLSName   string // BUILDKIT_TLS_SERVER_NAME
	Engine            Engine // the engine SERVE_BUILDER=docker builds on
}

// Engine is how to reach the Docker Engine, as the docker CLI reads it: serve's docker builder
// and image's docker source both use it.
type Engine struct {
	Host      string // DOCKER_HOST
	TLSVerify bool   // DOCKER_TLS_VERIFY
	CertPath  string // DOCKER_CERT_PATH
}

// Output is where every target reports.
type Output struct {
	Progress     string
	GitHubOutput string
}

// Config is the settings of one target, read once from the environment: only the sections
// that target reads are filled (see Sections).
type Config struct {
	Pack   Pack
	API    API
	Send   Send
	Export Export
	Serve  Serve
	Output Output
}

// Section names a part of Config.
type Section int

// The sections of Config, in the order their variables are listed.
const (
	PackSection Section = iota
	APISection
	SendSection
	ExportSection
	ServeSection
	OutputSection
	SkipSection // NO_UPLOAD: all may pack only
)

// Sections is which settings each target reads: the one place that says it. The targets'
// -h text, their validation and the names the resume hints recognise all come from here.
var Sections = map[string][]Section{
	"context":  {PackSection, OutputSection},
	"validate": {PackSection, OutputSection},
	"upload":   {PackSection, APISection, SendSection, OutputSection},
	"all":      {PackSection, APISection, SendSection, SkipSection, OutputSection},
	"status":   {APISection, OutputSection},
	"cancel":   {APISection, OutputSection},
	"image":    {APISection, ExportSection, OutputSection},
	"serve":    {ServeSection, OutputSection},
	"version":  {OutputSection},
}

// TargetNames are the targets of Sections, sorted.
func TargetNames() []string {
	names := make([]string, 0, len(Sections))
	for n := range Sections {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Reads lists the variables target reads, in the order they are read (each once).
func Reads(target string) []string {
	var names []string
	seen := map[string]bool{}
	load(Sections[target], func(name string) string {
		if !seen[name] {
			seen[name] = true
			names = append(names, name)
		}
		return ""
	})
	return names
}

// Load reads every section through getenv (os.Getenv in production): what tests and tools
// that stand for any target use. A bad value is a usage error (exit code 2) naming the variable.
func Load(getenv func(string) string) (Config, error) {
	return load([]Section{PackSection, APISection, SendSection, SkipSection, ExportSection, ServeSection, OutputSection}, getenv)
}

// LoadFor reads the sections target reads (Sections); a bad value of any other variable is
// not its concern (PULL=yes must not stop context).
func LoadFor(target string, getenv func(string) string) (Config, error) {
	sections, ok := Sections[target]
	if !ok {
		return Config{}, fmt.Errorf("no settings known for target %q", target)
	}
	return load(sections, getenv)
}

func load(sections []Section, getenv func(string) string) (Config, error) {
	r := &reader{getenv: getenv}
	var c Config
	for _, s := range sections {
		switch s {
		case PackSection:
			c.Pack = r.pack()
		case APISection:
			c.API = r.api()
		case SendSection:
			c.Send = r.send()
		case ExportSection:
			c.Export = r.export()
		case ServeSection:
			c.Serve = r.serve()
		case SkipSection:
			c.Send.NoUpload = r.boolean("NO_UPLOAD", false)
		case OutputSection:
			c.Output = Output{
				Progress:     r.oneOf("PROGRESS", "auto", "auto", "tty", "plain", "quiet"),
				GitHubOutput: r.str("GITHUB_OUTPUT", ""),
			}
		}
	}
	if r.err != nil {
		return Config{}, r.err
	}
	return c, nil
}

func (r *reader) pack() Pack {
	p := Pack{
		SourceDir:        r.str("SOURCE_DIR", ""),
		OutputDir:        r.str("OUTPUT_DIR", "./runtime-build"),
		OutputName:       r.str("OUTPUT_NAME", ""),
		ImageName:        r.str("IMAGE_NAME", "agent-server"),
		BaseImage:        r.str("BASE_IMAGE", ""),
		BuildArgs:        r.buildArgs("BUILD_ARGS"),
		Target:           r.str("TARGET", DefaultTarget),
		Tags:             r.list("CUSTOM_TAGS", "python"),
		GitRef:           firstNonEmpty(r.str("SDK_REF", ""), r.str("GITHUB_REF", "")),
		CleanOutput:      r.boolean("CLEAN_OUTPUT", true),
		SHAOverride:      firstNonEmpty(r.str("SDK_SHA", ""), r.str("GITHUB_SHA", "")),
		Include:          r.list("INCLUDE", ""),
		IncludeUntracked: r.boolean("INCLUDE_UNTRACKED", false),
		AllowSecrets:     r.list("ALLOW_SECRETS", ""),
		Dockerfile:       r.str("DOCKERFILE", DockerfileAuto),
		DockerfileTmpl:   r.str("DOCKERFILE_TEMPLATE", ""),
		TargetImage:      r.targetImage(),
	}
	p.TargetSet = r.str("TARGET", "") != ""
	if v := r.str("SOURCE_DATE_EPOCH", ""); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			r.fail("SOURCE_DATE_EPOCH", v, "a whole number of seconds since 1970")
		}
		p.SourceDateEpoch = &n
	}
	if !stagePattern.MatchString(p.Target) {
		r.fail("TARGET", p.Target, "a stage name of the Dockerfile (the template's: "+strings.Join(Targets, ", ")+")")
	}
	if p.DockerfileTmpl != "" && p.Dockerfile != DockerfileAuto && p.Dockerfile != DockerfileGenerated {
		r.fail("DOCKERFILE", p.Dockerfile, "auto or generated when DOCKERFILE_TEMPLATE is set (the template makes the Dockerfile)")
	}
	if len(p.Tags) == 0 {
		r.fail("CUSTOM_TAGS", r.getenv("CUSTOM_TAGS"), "at least one tag")
	}
	for _, t := range p.Tags {
		if !tagPattern.MatchString(t) {
			r.fail("CUSTOM_TAGS", t, "Docker tags ([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})")
		}
	}
	if p.SHAOverride != "" && !shaPattern.MatchString(p.SHAOverride) {
		r.fail("SDK_SHA/GITHUB_SHA", p.SHAOverride, "a commit SHA (letters, digits, '.', '_', '-')")
	}
	if p.ImageName == "" || !namePattern.MatchString(p.ImageName) {
		r.fail("IMAGE_NAME", p.ImageName, "a lowercase image repository name")
	}
	if p.OutputName != "" && (strings.ContainsAny(p.OutputName, `/\`) || p.OutputName == "." || p.OutputName == "..") {
		r.fail("OUTPUT_NAME", p.OutputName, "a file name without directories")
	}
	if strings.ContainsAny(p.BaseImage, " \t\r\n") {
		r.fail("BASE_IMAGE", p.BaseImage, "an image reference without spaces")
	}
	if p.SourceDir != "" {
		p.SourceDir = filepath.Clean(p.SourceDir)
	}
	p.OutputDir = filepath.Clean(p.OutputDir)
	return p
}

func (r *reader) targetImage() string {
	v := r.str("TARGET_IMAGE", "")
	if v != "" {
		if _, err := name.NewTag(v); err != nil {
			r.fail("TARGET_IMAGE", v, "an image reference with a tag, such as registry.example/team/app:1.0")
		}
	}
	return v
}

func (r *reader) api() API {
	a := API{
		URL:               strings.TrimRight(r.str("RUNTIME_API_URL", ""), "/"),
		Key:               r.key(),
		AllowInsecureHTTP: r.boolean("ALLOW_INSECURE_HTTP", false),
		PollInterval:      r.duration("POLL_INTERVAL", 10*time.Second),
		BuildTimeout:      r.duration("BUILD_TIMEOUT", 30*time.Minute),
	}
	if a.PollInterval <= 0 {
		r.fail("POLL_INTERVAL", a.PollInterval.String(), "a positive duration")
	}
	if a.BuildTimeout <= 0 {
		r.fail("BUILD_TIMEOUT", a.BuildTimeout.String(), "a positive duration")
	}
	return a
}

// key reads RUNTIME_API_KEY: never trimmed, never echoed, not even in its error.
func (r *reader) key() string {
	k := r.getenv("RUNTIME_API_KEY")
	if strings.ContainsFunc(k, unicode.IsControl) && r.err == nil {
		r.err = exitcode.Usagef("RUNTIME_API_KEY holds a line break or another control character: set it to the key alone")
	}
	return k
}

func (r *reader) send() Send {
	return Send{
		UploadFormat: r.oneOf("UPLOAD_FORMAT", "multipart", "multipart", "json"),
		Force:        r.boolean("FORCE", false),
	}
}

func (r *reader) export() Export {
	return Export{
		Source:      r.oneOf("IMAGE_SOURCE", "auto", "auto", "docker", "registry"),
		Platform:    r.str("PLATFORM", "linux/amd64"),
		Pull:        r.boolean("PULL", true),
		TargetImage: r.targetImage(),
		OutputDir:   filepath.Clean(r.str("OUTPUT_DIR", "./runtime-build")),
		Engine:      r.engine(),
	}
}

func (r *reader) engine() Engine {
	return Engine{
		Host:      r.str("DOCKER_HOST", ""),
		TLSVerify: r.str("DOCKER_TLS_VERIFY", "") != "", // the docker CLI: any value turns it on
		CertPath:  r.str("DOCKER_CERT_PATH", ""),
	}
}

func (r *reader) serve() Serve {
	s := Serve{
		Addr:         r.str("SERVE_ADDR", "127.0.0.1:8000"),
		Builder:      r.oneOf("SERVE_BUILDER", "docker", "docker", "buildkit", "check"),
		Key:          r.key(),
		NoAuth:       r.boolean("SERVE_NO_AUTH", false),
		RemoteNoAuth: r.boolean("SERVE_ALLOW_REMOTE_NO_AUTH", false),
		Registry:     r.str("SERVE_REGISTRY_PREFIX", "localhost/runtime"),
		Workers:      r.positiveInt("SERVE_WORKERS", 0),      // 0: server.New's default, the one place
		BuildTimeout: r.duration("SERVE_BUILD_TIMEOUT", 0),   // 0: server.New's default
		MaxUpload:    r.positiveInt64("SERVE_MAX_UPLOAD", 0), // 0: server.New's default

		LocalImages:      r.boolean("SERVE_LOCAL_IMAGES", false),
		AllowPrivateURLs: r.boolean("SERVE_ALLOW_PRIVATE_URLS", false),
		CacheMax:         r.positiveInt64("SERVE_CACHE_MAX", 10<<30),
		StateDir:         r.str("SERVE_STATE_DIR", ""),
		StateHome:        r.str("XDG_STATE_HOME", ""),
		CacheMode:        r.oneOf("SERVE_CACHE_MODE", "max", "max", "min", "off"),
		Platforms:        r.list("SERVE_PLATFORMS", ""),

		BuildkitHost:      r.str("BUILDKIT_HOST", ""),
		BuildkitTLSCACert: r.str("BUILDKIT_TLS_CA_CERT", ""),
		BuildkitTLSCert:   r.str("BUILDKIT_TLS_CERT", ""),
		BuildkitTLSKey:    r.str("BUILDKIT_TLS_KEY", ""),
		BuildkitTLSName:   r.str("BUILDKIT_TLS_SERVER_NAME", ""),
		Engine:            r.engine(),
	}
	if s.Builder == "buildkit" && s.BuildkitHost == "" {
		r.fail("BUILDKIT_HOST", "", "the buildkitd address SERVE_BUILDER=buildkit builds on (unix://, tcp://, docker-container://, kube-pod://)")
	}
	if (s.BuildkitTLSCert == "") != (s.BuildkitTLSKey == "") {
		r.fail("BUILDKIT_TLS_CERT/BUILDKIT_TLS_KEY", s.BuildkitTLSCert+s.BuildkitTLSKey, "both set (a client certificate and its key) or neither")
	}
	if r.str("SERVE_BUILD_TIMEOUT", "") != "" && s.BuildTimeout <= 0 {
		r.fail("SERVE_BUILD_TIMEOUT", s.BuildTimeout.String(), "a positive duration")
	}
	return s
}

// InGitHubActions reports whether the process runs as a GitHub Actions step (failures are then
// also annotations). It is read apart from Load, so that a configuration that fails to load is
// annotated too. The runner owns GITHUB_ACTIONS and sets it to "true"; any other value means
// no, and is never an error.
func InGitHubActions(getenv func(string) string) bool { return getenv("GITHUB_ACTIONS") == "true" }

var (
	tagPattern   = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	stagePattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.-]*$`) // BuildKit's, case-insensitive
	argPattern   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	shaPattern   = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	namePattern  = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$`)
)

// reader keeps the first bad variable so that Load reports exactly one line.
type reader struct {
	getenv func(string) string
	err    error
}

func (r *reader) fail(name, value, want string) {
	if r.err == nil {
		r.err = exitcode.Usagef("%s=%q is not valid: want %s", name, value, want)
	}
}

func (r *reader) str(name, def string) string {
	if v := strings.TrimSpace(r.getenv(name)); v != "" {
		return v
	}
	return def
}

func (r *reader) list(name, def string) []string {
	var out []string
	for _, v := range strings.Split(r.str(name, def), ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// buildArgs reads NAME=VALUE items separated by commas or newlines; a value keeps its inner
// spaces, quotes and dollars as they are.
func (r *reader) buildArgs(name string) []BuildArg {
	var out []BuildArg
	seen := map[string]int{}
	for _, line := range strings.Split(r.getenv(name), "\n") {
		for _, item := range strings.Split(line, ",") {
			if item = strings.TrimSpace(item); item == "" {
				continue
			}
			k, v, ok := strings.Cut(item, "=")
			if k = strings.TrimSpace(k); !ok || !argPattern.MatchString(k) {
				r.fail(name, item, "NAME=VALUE items separated by commas or newlines")
				continue
			}
			if i, dup := seen[k]; dup {
				out[i].Value = v // the last one wins, as with repeated --build-arg
				continue
			}
			seen[k] = len(out)
			out = append(out, BuildArg{Name: k, Value: v})
		}
	}
	return out
}

func (r *reader) boolean(name string, def bool) bool {
	v := r.str(name, "")
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		r.fail(name, v, "true or false")
	}
	return b
}

func (r *reader) duration(name string, def time.Duration) time.Duration {
	v := r.str(name, "")
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		r.fail(name, v, "a Go duration such as 10s or 30m")
	}
	return d
}

func (r *reader) positiveInt(name string, def int) int {
	return int(r.positive(name, int64(def), strconv.IntSize))
}

// positiveInt64 serves sizes, which outgrow an int on 32-bit platforms.
func (r *reader) positiveInt64(name string, def int64) int64 {
	return r.positive(name, def, 64)
}

func (r *reader) positive(name string, def int64, bits int) int64 {
	v := r.str(name, "")
	if v == "" {
		return def
	}
	n, err := strconv.ParseInt(v, 10, bits)
	if err != nil || n <= 0 {
		r.fail(name, v, "a positive whole number")
	}
	return n
}

func (r *reader) oneOf(name, def string, allowed ...string) string {
	v := r.str(name, def)
	if !slices.Contains(allowed, v) {
		r.fail(name, v, "one of "+strings.Join(allowed, ", "))
	}
	return v
}

func firstNonEmpty(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}
