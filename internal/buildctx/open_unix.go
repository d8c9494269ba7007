//go:build unix

package buildctx

import (
	"os"
	"syscall"
)

// openFlags open a file to pack without waiting: a FIFO put where a file was opens at once
// (and is then refused) instead of blocking until a writer comes, and a link put there is not
// followed.
const openFlags = os.O_RDONLY | syscall.O_NONBLOCK | syscall.O_NOFOLLOW
