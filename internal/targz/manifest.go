package targz

import (
	"encoding/json"
	"errors"
	"fmt"
)

// MaxManifest bounds the manifest.json of an image archive (docker save writes a few KiB).
const MaxManifest = 1 << 20

// Manifest is the manifest.json at the root of a `docker save` archive: one entry an image.
type Manifest []ManifestImage

// ManifestImage is one image of a Manifest: the archive's files that hold it.
type ManifestImage struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// ParseManifest parses the content of manifest.json; what is not a docker save manifest (not
// JSON of that shape, or no image) is an error.
func ParseManifest(b []byte) (Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("manifest.json is not a docker save manifest: %w", err)
	}
	if len(m) == 0 {
		return nil, errors.New("manifest.json is not a docker save manifest: it lists no image")
	}
	return m, nil
}

// Files are the names of the archive's files the manifest refers to: each image's config and
// layers, as written (relative to the archive's root, possibly through links).
func (m Manifest) Files() []string {
	var out []string
	for _, img := range m {
		out = append(out, img.Config)
		out = append(out, img.Layers...)
	}
	return out
}
