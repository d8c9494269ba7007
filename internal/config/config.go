// Package config reads the environment (the README's Environment section) once into a Config.
package config

import (
	"net/url"
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

// Config is every setting of the contract, read once from the environment.
type Config struct {
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

	RuntimeAPIURL     string
	RuntimeAPIKey     string
	AllowInsecureHTTP bool
	TargetImage       string
	UploadFormat      string
	NoUpload          bool
	Force             bool
	PollInterval      time.Duration
	BuildTimeout      time.Duration

	ImageSource string
	Platform    string
	Pull        bool

	Progress     string
	GitHubOutput string

	ServeAddr         string
	ServeBuilder      string
	ServeNoAuth       bool
	ServeRemoteNoAuth bool // SERVE_ALLOW_REMOTE_NO_AUTH: SERVE_NO_AUTH on an address beyond loopback
	ServeRegistry     string
	ServeWorkers      int
	ServeBuildTimeout time.Duration
	ServeMaxUpload    int64
	// The trust boundary's opt-ins (docs/serve-security.md) and the docker builder's cache bound.
	ServeLocalImages      bool  // SERVE_LOCAL_IMAGES
	ServeAllowPrivateURLs bool  // SERVE_ALLOW_PRIVATE_URLS
	ServeCacheMax         int64 // SERVE_CACHE_MAX: bytes of BuildKit cache serve's builds keep in the engine
	// The buildkit builder's farm settings (docs/serve-farm.md).
	ServeStateDir  string   // SERVE_STATE_DIR; empty: records.DefaultDir
	ServeCacheMode string   // SERVE_CACHE_MODE: max, min, off
	ServePlatforms []string // SERVE_PLATFORMS, comma-separated; empty: the daemon's own

	// SERVE_BUILDER=buildkit's daemon, and the engine SERVE_BUILDER=docker reaches (as the docker CLI reads it).
	BuildkitHost      string // BUILDKIT_HOST
	BuildkitTLSCACert string // BUILDKIT_TLS_CA_CERT
	BuildkitTLSCert   string // BUILDKIT_TLS_CERT
	BuildkitTLSKey    string // BUILDKIT_TLS_KEY
	BuildkitTLSName   string // BUILDKIT_TLS_SERVER_NAME
	DockerHost        string // DOCKER_HOST
	DockerTLSVerify   bool   // DOCKER_TLS_VERIFY
	DockerCertPath    string // DOCKER_CERT_PATH
}

// PrimaryTag is the first of CUSTOM_TAGS.
func (c Config) PrimaryTag() string { return c.Tags[0] }

// Load reads the configuration through getenv (os.Getenv in production). A bad value is a
// usage error (exit code 2) naming the variable.
func Load(getenv func(string) string) (Config, error) { return LoadFor(getenv, nil) }

// LoadFor is Load for a target that reads only some variables: a bad value of any other
// variable is not its concern (PULL=yes must not stop context). reads reports whether the
// target reads a variable; nil: it reads them all.
func LoadFor(getenv func(string) string, reads func(name string) bool) (Config, error) {
	r := reader{getenv: getenv, reads: reads}
	c := Config{
		SourceDir:        r.str("SOURCE_DIR", ""),
		OutputDir:        r.str("OUTPUT_DIR", "./runtime-build"),
		OutputName:       r.str("OUTPUT_NAME", ""),
		ImageName:        r.str("IMAGE_NAME", "agent-server"),
		BaseImage:        r.str("BASE_IMAGE", ""),
		BuildArgs:        r.buildArgs("BUILD_ARGS"),
		Target:           r.str("TARGET", DefaultTarget),
		TargetSet:        r.str("TARGET", "") != "",
		Tags:             r.list("CUSTOM_TAGS", "python"),
		GitRef:           firstNonEmpty(r.str("SDK_REF", ""), r.str("GITHUB_REF", "")),
		CleanOutput:      r.boolean("CLEAN_OUTPUT", true),
		SHAOverride:      firstNonEmpty(r.str("SDK_SHA", ""), r.str("GITHUB_SHA", "")),
		Include:          r.list("INCLUDE", ""),
		IncludeUntracked: r.boolean("INCLUDE_UNTRACKED", false),
		AllowSecrets:     r.list("ALLOW_SECRETS", ""),
		Dockerfile:       r.str("DOCKERFILE", DockerfileAuto),
		DockerfileTmpl:   r.str("DOCKERFILE_TEMPLATE", ""),

		RuntimeAPIURL:     strings.TrimRight(r.str("RUNTIME_API_URL", ""), "/"),
		RuntimeAPIKey:     getenv("RUNTIME_API_KEY"), // never trimmed, never echoed
		AllowInsecureHTTP: r.boolean("ALLOW_INSECURE_HTTP", false),
		TargetImage:       r.str("TARGET_IMAGE", ""),
		UploadFormat:      r.oneOf("UPLOAD_FORMAT", "multipart", "multipart", "json"),
		NoUpload:          r.boolean("NO_UPLOAD", false),
		Force:             r.boolean("FORCE", false),
		PollInterval:      r.duration("POLL_INTERVAL", 10*time.Second),
		BuildTimeout:      r.duration("BUILD_TIMEOUT", 30*time.Minute),

		ImageSource: r.oneOf("IMAGE_SOURCE", "auto", "auto", "docker", "registry"),
		Platform:    r.str("PLATFORM", "linux/amd64"),
		Pull:        r.boolean("PULL", true),

		Progress:     r.oneOf("PROGRESS", "auto", "auto", "tty", "plain", "quiet"),
		GitHubOutput: r.str("GITHUB_OUTPUT", ""),

		ServeAddr:             r.str("SERVE_ADDR", "127.0.0.1:8000"),
		ServeBuilder:          r.oneOf("SERVE_BUILDER", "docker", "docker", "buildkit", "check"),
		ServeNoAuth:           r.boolean("SERVE_NO_AUTH", false),
		ServeRemoteNoAuth:     r.boolean("SERVE_ALLOW_REMOTE_NO_AUTH", false),
		ServeRegistry:         r.str("SERVE_REGISTRY_PREFIX", "localhost/runtime"),
		ServeWorkers:          r.positiveInt("SERVE_WORKERS", 1),
		ServeBuildTimeout:     r.duration("SERVE_BUILD_TIMEOUT", 30*time.Minute),
		ServeMaxUpload:        r.positiveInt64("SERVE_MAX_UPLOAD", 4<<30),
		ServeLocalImages:      r.boolean("SERVE_LOCAL_IMAGES", false),
		ServeAllowPrivateURLs: r.boolean("SERVE_ALLOW_PRIVATE_URLS", false),
		ServeCacheMax:         r.positiveInt64("SERVE_CACHE_MAX", 10<<30),
		ServeStateDir:         r.str("SERVE_STATE_DIR", ""),
		ServeCacheMode:        r.oneOf("SERVE_CACHE_MODE", "max", "max", "min", "off"),
	}
	for _, p := range strings.Split(r.str("SERVE_PLATFORMS", ""), ",") {
		if p = strings.TrimSpace(p); p != "" {
			c.ServePlatforms = append(c.ServePlatforms, p)
		}
	}
	c.BuildkitHost = r.str("BUILDKIT_HOST", "")
	c.BuildkitTLSCACert = r.str("BUILDKIT_TLS_CA_CERT", "")
	c.BuildkitTLSCert = r.str("BUILDKIT_TLS_CERT", "")
	c.BuildkitTLSKey = r.str("BUILDKIT_TLS_KEY", "")
	c.BuildkitTLSName = r.str("BUILDKIT_TLS_SERVER_NAME", "")
	c.DockerHost = r.str("DOCKER_HOST", "")
	c.DockerTLSVerify = r.str("DOCKER_TLS_VERIFY", "") != "" // the docker CLI: any value turns it on
	c.DockerCertPath = r.str("DOCKER_CERT_PATH", "")
	if c.ServeBuilder == "buildkit" && c.BuildkitHost == "" {
		r.fail("BUILDKIT_HOST", "", "the buildkitd address SERVE_BUILDER=buildkit builds on (unix://, tcp://, docker-container://, kube-pod://)")
	}
	if (c.BuildkitTLSCert == "") != (c.BuildkitTLSKey == "") {
		r.fail("BUILDKIT_TLS_CERT/BUILDKIT_TLS_KEY", c.BuildkitTLSCert+c.BuildkitTLSKey, "both set (a client certificate and its key) or neither")
	}
	if v := r.str("SOURCE_DATE_EPOCH", ""); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			r.fail("SOURCE_DATE_EPOCH", v, "a whole number of seconds since 1970")
		}
		c.SourceDateEpoch = &n
	}
	if !stagePattern.MatchString(c.Target) {
		r.fail("TARGET", c.Target, "a stage name of the Dockerfile (the template's: "+strings.Join(Targets, ", ")+")")
	}
	if c.DockerfileTmpl != "" && c.Dockerfile != DockerfileAuto && c.Dockerfile != DockerfileGenerated {
		r.fail("DOCKERFILE", c.Dockerfile, "auto or generated when DOCKERFILE_TEMPLATE is set (the template makes the Dockerfile)")
	}
	if c.TargetImage != "" {
		if _, err := name.NewTag(c.TargetImage); err != nil {
			r.fail("TARGET_IMAGE", c.TargetImage, "an image reference with a tag, such as registry.example/team/app:1.0")
		}
	}
	if len(c.Tags) == 0 {
		r.fail("CUSTOM_TAGS", getenv("CUSTOM_TAGS"), "at least one tag")
	}
	for _, t := range c.Tags {
		if !tagPattern.MatchString(t) {
			r.fail("CUSTOM_TAGS", t, "Docker tags ([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})")
		}
	}
	if c.SHAOverride != "" && !shaPattern.MatchString(c.SHAOverride) {
		r.fail("SDK_SHA/GITHUB_SHA", c.SHAOverride, "a commit SHA (letters, digits, '.', '_', '-')")
	}
	if c.ImageName == "" || !namePattern.MatchString(c.ImageName) {
		r.fail("IMAGE_NAME", c.ImageName, "a lowercase image repository name")
	}
	if c.OutputName != "" && (strings.ContainsAny(c.OutputName, `/\`) || c.OutputName == "." || c.OutputName == "..") {
		r.fail("OUTPUT_NAME", c.OutputName, "a file name without directories")
	}
	if c.RuntimeAPIURL != "" {
		if u, err := url.Parse(c.RuntimeAPIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			r.fail("RUNTIME_API_URL", c.RuntimeAPIURL, "an http:// or https:// URL")
		}
	}
	if strings.ContainsAny(c.BaseImage, " \t\r\n") {
		r.fail("BASE_IMAGE", c.BaseImage, "an image reference without spaces")
	}
	if strings.ContainsFunc(c.RuntimeAPIKey, unicode.IsControl) && r.err == nil { // never echoed, not even here
		r.err = exitcode.Usagef("RUNTIME_API_KEY holds a line break or another control character: set it to the key alone")
	}
	if c.PollInterval <= 0 {
		r.fail("POLL_INTERVAL", c.PollInterval.String(), "a positive duration")
	}
	if c.BuildTimeout <= 0 {
		r.fail("BUILD_TIMEOUT", c.BuildTimeout.String(), "a positive duration")
	}
	if r.err != nil {
		return Config{}, r.err
	}
	if c.SourceDir != "" {
		c.SourceDir = filepath.Clean(c.SourceDir)
	}
	c.OutputDir = filepath.Clean(c.OutputDir)
	return c, nil
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
	reads  func(string) bool
	err    error
}

func (r *reader) fail(name, value, want string) {
	if r.reads != nil && !slices.ContainsFunc(strings.Split(name, "/"), r.reads) {
		return // a variable this target does not read
	}
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
