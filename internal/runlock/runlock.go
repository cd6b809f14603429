// Package runlock gives a directory one writer: a run directory of `pretrain`, a dataset
// directory of `prepare`. Acquire takes an advisory flock(2) on DIR/.clipgo.lock and writes the
// holder (pid, host, command, start time) into it as JSON; a second Acquire, from this process
// or any other, is refused with an error naming that holder. The kernel drops a flock when its
// process ends, however it ends (kill -9 included), so a lock file left by a dead process
// holds no lock: the next Acquire takes it over and reports the dead holder in Lock.Stale.
//
// The lock is advisory: it binds clipgo processes, not other programs writing into the
// directory. It works on local file systems; on NFS, Linux emulates flock with POSIX locks.
package runlock

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// FileName is the lock file's name inside the locked directory.
const FileName = ".clipgo.lock"

// maxHolderBytes bounds how much of a lock file is read: it is outside input too.
const maxHolderBytes = 64 << 10

// maxCommandBytes bounds the command line recorded in the lock file.
const maxCommandBytes = 4 << 10

// Holder is who holds (or held) a lock, as written in the lock file.
type Holder struct {
	PID     int       `json:"pid"`
	Host    string    `json:"host"`
	What    string    `json:"what,omitempty"` // the job: "pretrain", "prepare", ...
	Command string    `json:"command"`        // the holder's command line
	Since   time.Time `json:"since"`          // when it took the lock
}

// String describes h for messages: "pid 4242 on host gpu1 since 2026-01-02T15:04:05Z
// (pretrain: clipgo pretrain --out runs/a)".
func (h Holder) String() string {
	s := fmt.Sprintf("pid %d on host %s", h.PID, orUnknown(h.Host))
	if !h.Since.IsZero() {
		s += " since " + h.Since.Format(time.RFC3339)
	}
	switch {
	case h.What != "" && h.Command != "":
		s += " (" + h.What + ": " + h.Command + ")"
	case h.Command != "":
		s += " (" + h.Command + ")"
	case h.What != "":
		s += " (" + h.What + ")"
	}
	return s
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// ErrHeld is wrapped by the error Acquire returns when another writer holds the lock.
var ErrHeld = errors.New("directory is in use by another writer")

// HeldError refuses a lock another writer holds.
type HeldError struct {
	Dir    string // the directory asked for
	Path   string // its lock file
	Holder Holder // zero PID when the lock file could not be read
}

func (e *HeldError) Error() string {
	who := "another process (its lock file holds no readable holder yet)"
	if e.Holder.PID != 0 {
		who = e.Holder.String()
	}
	return fmt.Sprintf("%s is in use by %s; wait for it to finish or stop it (lock file %s)", e.Dir, who, e.Path)
}

// Unwrap returns ErrHeld.
func (e *HeldError) Unwrap() error { return ErrHeld }

// Lock is a held lock; Release gives it up. The process keeps the lock file open meanwhile.
type Lock struct {
	// Holder is this process, as written in the lock file.
	Holder Holder
	// Stale is the holder recorded by a process that died holding the lock (its lock file
	// was left behind, its flock was not), nil when the lock file was new or released
	// properly. The caller should say so: see Warning.
	Stale *Holder

	dir, path string
	f         *os.File
}

// Path returns the lock file's path.
func (l *Lock) Path() string { return l.path }

// Warning returns a message for the log when Acquire took over a dead holder's lock file,
// "" otherwise: the previous writer stopped without cleaning up, so the directory may hold its
// partial output.
func (l *Lock) Warning() string {
	switch {
	case l.Stale == nil:
		return ""
	case l.Stale.PID == 0:
		return fmt.Sprintf("%s: took over a lock file left by a process that is no longer running (%s held no readable record); the directory may hold its partial output", l.dir, l.path)
	}
	return fmt.Sprintf("%s: took over the lock of %s, which is no longer running; the directory may hold its partial output", l.dir, l.Stale.String())
}

// Acquire locks dir for one writer, creating dir if it does not exist. what names the job for
// the holder record ("pretrain", "prepare"). It never waits: when another process, or another
// Acquire in this one, holds the lock it returns a *HeldError (wrapping ErrHeld) that names
// the holder.
func Acquire(dir, what string) (*Lock, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	path := filepath.Join(dir, FileName)
	host, _ := os.Hostname()
	me := Holder{PID: os.Getpid(), Host: host, What: what, Command: commandLine(os.Args)}
	// The holder that releases a lock removes the file while holding it, so a file opened
	// just before that removal can be locked after it, though it is no longer at path: such
	// a lock is worthless, and Acquire opens the path again.
	for attempt := 0; ; attempt++ {
		f, err := openLockFile(path)
		if err != nil {
			return nil, fmt.Errorf("lock %s: %w", dir, err)
		}
		held, err := tryLock(f)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("lock %s: flock %s: %w", dir, path, err)
		}
		if held {
			h, _ := readHolder(f)
			f.Close()
			if h.PID == 0 { // the holder may be writing its record right now: look once more
				time.Sleep(20 * time.Millisecond)
				h, _ = readHolderAt(path)
			}
			return nil, &HeldError{Dir: dir, Path: path, Holder: h}
		}
		if same, err := stillAt(f, path); err != nil || !same {
			f.Close()
			if err != nil {
				return nil, fmt.Errorf("lock %s: %w", dir, err)
			}
			if attempt >= 100 {
				return nil, fmt.Errorf("lock %s: %s keeps being replaced", dir, path)
			}
			continue
		}
		l := &Lock{dir: dir, path: path, f: f}
		if old, err := readHolder(f); err == nil && old.PID != 0 {
			l.Stale = &old
		} else if err != nil && !errors.Is(err, errNoHolder) {
			// An unreadable leftover is still a leftover: report what is known.
			l.Stale = &Holder{}
		}
		me.Since = time.Now().UTC().Truncate(time.Second)
		l.Holder = me
		if err := writeHolder(f, me); err != nil {
			l.release(false)
			return nil, fmt.Errorf("lock %s: write %s: %w", dir, path, err)
		}
		return l, nil
	}
}

// Release removes the lock file and gives up the lock. It is safe to call more than once and
// on a nil Lock; only the first call does anything.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	return l.release(true)
}

func (l *Lock) release(remove bool) error {
	var err error
	if remove {
		// Removed while still held, so nobody can lock this file and then see it vanish.
		if rerr := os.Remove(l.path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			err = rerr
		}
	}
	if cerr := l.f.Close(); err == nil { // closing the last descriptor drops the flock
		err = cerr
	}
	l.f = nil
	if err != nil {
		return fmt.Errorf("release lock %s: %w", l.path, err)
	}
	return nil
}

// errNoHolder says a lock file is empty: new, or truncated.
var errNoHolder = errors.New("no holder recorded")

// readHolder reads the holder record of an open lock file from its start.
func readHolder(f *os.File) (Holder, error) {
	b, err := io.ReadAll(io.NewSectionReader(f, 0, maxHolderBytes))
	if err != nil {
		return Holder{}, err
	}
	return parseHolder(b)
}

// readHolderAt reads the holder record at path, refusing anything but a regular file.
func readHolderAt(path string) (Holder, error) {
	f, err := openExisting(path)
	if err != nil {
		return Holder{}, err
	}
	defer f.Close()
	return readHolder(f)
}

func parseHolder(b []byte) (Holder, error) {
	if len(strings.TrimSpace(string(b))) == 0 {
		return Holder{}, errNoHolder
	}
	var h Holder
	if err := json.Unmarshal(b, &h); err != nil {
		return Holder{}, fmt.Errorf("lock file holds no holder record: %w", err)
	}
	if h.PID < 0 {
		h.PID = 0
	}
	h.Host = clip(h.Host, 256)
	h.What = clip(h.What, 256)
	h.Command = clip(h.Command, maxCommandBytes)
	return h, nil
}

// writeHolder replaces the lock file's content with h.
func writeHolder(f *os.File, h Holder) error {
	b, err := json.Marshal(h)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if err := f.Truncate(0); err != nil {
		return err
	}
	if _, err := f.WriteAt(b, 0); err != nil {
		return err
	}
	return f.Sync()
}

// commandLine joins args for the record, quoting those that need it, within maxCommandBytes.
func commandLine(args []string) string {
	parts := make([]string, len(args))
	for i, a := range args {
		if i == 0 {
			a = filepath.Base(a)
		}
		if a == "" || strings.ContainsAny(a, " \t\n\"'\\$`") {
			a = fmt.Sprintf("%q", a)
		}
		parts[i] = a
	}
	return clip(strings.Join(parts, " "), maxCommandBytes)
}

// clip cuts s to at most n bytes, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n-3], "") + "..."
}
