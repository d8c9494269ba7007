package buildctx

// hostCannotHold is why this system cannot hold a file of that path: on Windows, the names its
// file systems refuse.
var hostCannotHold = windowsCannotHold
