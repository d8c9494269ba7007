//go:build !unix

package buildctx

import "os"

// openFlags open a file to pack; windows has no FIFOs to block on, and the fstat check that
// follows refuses anything but a regular file.
const openFlags = os.O_RDONLY
