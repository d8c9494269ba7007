package buildctx

import (
	"archive/tar"
	"path/filepath"
	"slices"
)

// Composition is what an archive holds besides the selected files.
type Composition struct {
	Dockerfile []byte // the standalone Dockerfile, stored at the root as "Dockerfile"
	// Chosen is the Dockerfile it was made from (a slash path; empty for a template), kept at
	// its own path; ChosenSize is its size on disk.
	Chosen     string
	ChosenSize int64
	Root       string     // the source directory Chosen is read from
	Ignore     IgnoreFile // the ignore file that selected the files
	IgnoreData []byte     // its content, when it is neither .dockerignore nor Dockerfile.dockerignore
}

// ownIgnore is the ignore file BuildKit reads before .dockerignore for the root Dockerfile.
const ownIgnore = "Dockerfile.dockerignore"

// Compose returns the archive's complete, sorted entries: the selected ones with the
// standalone Dockerfile at the root, the chosen Dockerfile at its own path, and an ignore file
// that a builder of the archive reads as the selection did. replacedRoot reports that a root
// Dockerfile of the source gave way to the standalone one.
func Compose(selected []Entry, c Composition) (entries []Entry, replacedRoot bool) {
	root := Entry{Name: "Dockerfile", Type: tar.TypeReg, Mode: 0o644, Data: c.Dockerfile}
	entries, replacedRoot = Replace(slices.Clone(selected), root)
	if c.Chosen != "" && c.Chosen != "Dockerfile" && !Names(entries)[c.Chosen] {
		entries = append(entries, Entry{Name: c.Chosen, Type: tar.TypeReg, Mode: 0o644, Source: filepath.Join(c.Root, filepath.FromSlash(c.Chosen)), Size: c.ChosenSize})
	}
	switch {
	case c.Ignore.Path == ownIgnore:
	case c.Ignore.Path != ".dockerignore" && c.Ignore.Path != "":
		if c.IgnoreData != nil {
			entries, _ = Replace(entries, Entry{Name: ownIgnore, Type: tar.TypeReg, Mode: 0o644, Data: c.IgnoreData})
		}
	default:
		entries = slices.DeleteFunc(entries, func(e Entry) bool { return e.Name == ownIgnore })
	}
	return Complete(entries), replacedRoot && c.Chosen != "Dockerfile"
}
