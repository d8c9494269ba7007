// Package exitcode carries the process exit code of the README (Output) through wrapped errors:
// 0 success, 1 the work failed, 2 the call was wrong, 130 and 143 interrupted.
package exitcode

import (
	"errors"
	"fmt"
)

// The exit codes of the contract.
const (
	OK          = 0
	Failure     = 1
	Usage       = 2
	Interrupted = 130 // Ctrl-C (128 + SIGINT), after cleanup
	Terminated  = 143 // SIGTERM (128 + SIGTERM), after cleanup
)

// Error is an error with the exit code it ends the process with.
type Error struct {
	Code int
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// ExitStatus is the method mage's generated main looks for on the error a target returns.
func (e *Error) ExitStatus() int { return e.Code }

// Usagef returns an error that ends the process with exit code 2: the call was wrong.
func Usagef(format string, args ...any) error {
	return &Error{Code: Usage, Err: fmt.Errorf(format, args...)}
}

// AsUsage marks err as a usage error (exit code 2); nil stays nil.
func AsUsage(err error) error {
	if err == nil {
		return nil
	}
	return &Error{Code: Usage, Err: err}
}

// Of returns the exit code err ends the process with: 0 for nil, the code of the
// outermost *Error in its chain, 1 for any other error.
func Of(err error) int {
	if err == nil {
		return OK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Failure
}

// ForMage returns err in the form mage's main reads its exit code from: an *Error at the top
// of the chain, however deeply the code was wrapped below it.
func ForMage(err error) error {
	if err == nil {
		return nil
	}
	return &Error{Code: Of(err), Err: err}
}
