package train

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/clipgo/clipgo/fusion"
)

// checkMemory estimates what this process will take to train (batch pairs per step), logs
// it, and refuses a run that cannot fit in the memory the machine has available, before
// anything is allocated: a Go fatal out-of-memory says nothing a user can act on.
func (t *trainer) checkMemory(batch int) error {
	est := fusion.EstimateMemory(t.cfg.Model, batch)
	t.sum.Memory = est
	avail, source, err := availableMemory()
	if t.lead {
		if err != nil {
			t.log.Info("memory estimate", "estimate", est.String(), "available", "unknown ("+err.Error()+")")
		} else {
			t.log.Info("memory estimate", "estimate", est.String(), "available", fusion.Bytes(avail)+" ("+source+")")
		}
	}
	if err != nil || est.Total() <= avail {
		return nil
	}
	hint := "use a smaller model"
	if per := est.PerPair(); per > 0 {
		fit := (avail - (est.Total() - est.Activations)) / per
		if fit >= 2 {
			hint = fmt.Sprintf("lower train.batch_size (each pair takes about %s; about %d pairs per process would fit), or use a smaller model",
				fusion.Bytes(per), fit)
		}
	}
	return fmt.Errorf("pretrain: not enough memory: the run needs about %s, the machine has %s available (%s); %s",
		est.String(), fusion.Bytes(avail), source, hint)
}

// availableMemory returns the memory this process may still take: /proc/meminfo's
// MemAvailable, or less when a cgroup (v2) limit leaves less, and where the figure comes from.
func availableMemory() (int64, string, error) {
	raw, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, "", err
	}
	avail := int64(-1)
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemAvailable:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				if kb, err := strconv.ParseInt(f[0], 10, 64); err == nil {
					avail = kb << 10
				}
			}
		}
	}
	if avail < 0 {
		return 0, "", errors.New("/proc/meminfo has no MemAvailable")
	}
	source := "MemAvailable in /proc/meminfo"
	if limit, ok := cgroupRoom(); ok && limit < avail {
		avail, source = limit, "the cgroup's memory.max less its memory.current"
	}
	return avail, source, nil
}

// cgroupRoom returns what the process's cgroup v2 memory limit leaves, when there is one.
func cgroupRoom() (int64, bool) {
	read := func(name string) (int64, bool) {
		b, err := os.ReadFile("/sys/fs/cgroup/" + name)
		if err != nil {
			return 0, false
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		return n, err == nil // "max" (no limit) does not parse
	}
	limit, ok := read("memory.max")
	if !ok {
		return 0, false
	}
	used, _ := read("memory.current")
	return max(limit-used, 0), true
}
