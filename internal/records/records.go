// Package records keeps serve's build records in an embedded bbolt database, so that a restart
// (even after kill -9) still answers every earlier build. One serve per directory: the database
// file is locked while a Store is open.
package records

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/runtimebuild/runtimebuild/internal/runtimeapi"
)

// FileName is the database file inside the state directory.
const FileName = "builds.db"

// Defaults of Options: at most DefaultMaxRecords ended builds, none older than DefaultMaxAge,
// each with at most DefaultMaxLogTail bytes of log; the file then stays under about 40 MiB.
const (
	DefaultMaxRecords = 1000
	DefaultMaxAge     = 7 * 24 * time.Hour
	DefaultMaxLogTail = 32 << 10
)

// lockWait is how long Open waits for another process's lock before it gives up.
const lockWait = time.Second

// Record is what serve answers about one build.
type Record struct {
	ID          string                 `json:"id"`
	Status      runtimeapi.BuildStatus `json:"status"`
	TargetImage string                 `json:"target_image,omitempty"`
	Image       string                 `json:"image,omitempty"`  // the name it was built under, once it succeeded
	Digest      string                 `json:"digest,omitempty"` // the pushed manifest's digest, when known
	Error       string                 `json:"error,omitempty"`
	Message     string                 `json:"message,omitempty"`      // the builder's note on a SUCCESS (the check builder's)
	CheckedOnly bool                   `json:"checked_only,omitempty"` // SUCCESS of the check builder: no image was built
	Queued      time.Time              `json:"queued"`
	Started     time.Time              `json:"started,omitzero"`
	Ended       time.Time              `json:"ended,omitzero"`     // zero while it runs
	LogTail     []byte                 `json:"log_tail,omitempty"` // the end of its output, at most Options.MaxLogTail bytes
	// Telemetry is the builder's account of the build (durations, step counts), as JSON.
	Telemetry json.RawMessage `json:"telemetry,omitempty"`
}

// Options bound what a Store keeps. Zero values take the defaults.
type Options struct {
	MaxRecords int           // ended builds kept, the latest; running ones are never dropped
	MaxAge     time.Duration // ended builds older than this are dropped
	MaxLogTail int           // bytes of log kept per build (its end)
}

func (o Options) withDefaults() Options {
	if o.MaxRecords <= 0 {
		o.MaxRecords = DefaultMaxRecords
	}
	if o.MaxAge <= 0 {
		o.MaxAge = DefaultMaxAge
	}
	if o.MaxLogTail <= 0 {
		o.MaxLogTail = DefaultMaxLogTail
	}
	return o
}

// LockedError is a state directory another process holds open.
type LockedError struct{ Dir string }

func (e *LockedError) Error() string {
	return fmt.Sprintf("the state directory %s is in use by another serve (its %s is locked); give each serve its own directory", e.Dir, FileName)
}

// Store is an open database of build records.
type Store struct {
	db   *bolt.DB
	opts Options
}

var (
	byID    = []byte("builds") // id → Record as JSON
	byEnded = []byte("ended")  // ended time (8 bytes, big-endian nanoseconds) + id → nothing: the order of pruning
)

// DefaultDir is the state directory when none is set: stateHome/runtimebuild/serve (the edge
// passes $XDG_STATE_HOME), else, stateHome being empty or relative, as the XDG base directory
// specification says, ~/.local/state/runtimebuild/serve.
func DefaultDir(stateHome string) (string, error) {
	if filepath.IsAbs(stateHome) {
		return filepath.Join(stateHome, "runtimebuild", "serve"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no home directory for the default state directory: %w", err)
	}
	return filepath.Join(home, ".local", "state", "runtimebuild", "serve"), nil
}

// Open opens (creating it, mode 0700) the state directory's database and locks it; another
// process holding it is a *LockedError.
func Open(dir string, opts Options) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("making the state directory: %w", err)
	}
	db, err := bolt.Open(filepath.Join(dir, FileName), 0o600, &bolt.Options{Timeout: lockWait})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, &LockedError{Dir: dir}
	}
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", filepath.Join(dir, FileName), err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{byID, byEnded} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("preparing %s: %w", db.Path(), err)
	}
	return &Store{db: db, opts: opts.withDefaults()}, nil
}

// Close releases the database and its lock.
func (s *Store) Close() error { return s.db.Close() }

// Put writes r (replacing the record of the same ID), its log cut to its last MaxLogTail bytes,
// durably: it is on disk when Put returns.
func (s *Store) Put(r Record) error {
	if len(r.LogTail) > s.opts.MaxLogTail {
		tail := r.LogTail[len(r.LogTail)-s.opts.MaxLogTail:]
		if i := bytes.IndexByte(tail, '\n'); i >= 0 && i < len(tail)-1 {
			tail = tail[i+1:] // from a line's start
		}
		r.LogTail = tail
	}
	v, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		ids, ended := tx.Bucket(byID), tx.Bucket(byEnded)
		if old := ids.Get([]byte(r.ID)); old != nil {
			var prev Record
			if json.Unmarshal(old, &prev) == nil && !prev.Ended.IsZero() {
				if err := ended.Delete(endedKey(prev)); err != nil {
					return err
				}
			}
		}
		if !r.Ended.IsZero() {
			if err := ended.Put(endedKey(r), nil); err != nil {
				return err
			}
		}
		return ids.Put([]byte(r.ID), v)
	})
}

func endedKey(r Record) []byte {
	k := binary.BigEndian.AppendUint64(nil, uint64(r.Ended.UnixNano()))
	return append(k, r.ID...)
}

// Get returns the record of id; false when there is none.
func (s *Store) Get(id string) (Record, bool, error) {
	var r Record
	found := false
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(byID).Get([]byte(id))
		if v == nil {
			return nil
		}
		found = true
		return json.Unmarshal(v, &r)
	})
	return r, found, err
}

// Recover ends every build a previous serve left unended (it died while they were queued or
// ran): each becomes status with the error why, ended at now. It returns how many it ended.
func (s *Store) Recover(now time.Time, status runtimeapi.BuildStatus, why string) (int, error) {
	var open []Record
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(byID).ForEach(func(_, v []byte) error {
			var r Record
			if err := json.Unmarshal(v, &r); err != nil {
				return err
			}
			if r.Ended.IsZero() {
				open = append(open, r)
			}
			return nil
		})
	})
	if err != nil {
		return 0, err
	}
	for _, r := range open {
		r.Status, r.Error, r.Ended = status, why, now
		if err := s.Put(r); err != nil {
			return 0, err
		}
	}
	return len(open), nil
}

// Prune drops ended builds older than MaxAge, then the oldest beyond MaxRecords; running builds
// stay. It returns how many it dropped.
func (s *Store) Prune(now time.Time) (int, error) {
	dropped := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		ids, ended := tx.Bucket(byID), tx.Bucket(byEnded)
		over := ended.Stats().KeyN - s.opts.MaxRecords
		cutoff := now.Add(-s.opts.MaxAge).UnixNano()
		c := ended.Cursor()
		var drop [][]byte
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			old := int64(binary.BigEndian.Uint64(k[:8])) < cutoff
			if !old && len(drop) >= over {
				break // the keys are in order of ending: the rest are newer
			}
			drop = append(drop, append([]byte(nil), k...))
		}
		for _, k := range drop {
			if err := ended.Delete(k); err != nil {
				return err
			}
			if err := ids.Delete(k[8:]); err != nil {
				return err
			}
		}
		dropped = len(drop)
		return nil
	})
	return dropped, err
}
