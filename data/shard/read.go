package shard

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
)

// ReadOptions configures a streaming read of shard files. The zero value reads every
// column of every row, in file order, on one rank with DefaultWorkers workers.
type ReadOptions struct {
	// Columns are the Record columns to read (AllColumns when nil); the others stay zero
	// and are never read from disk. TextColumns reads no image bytes.
	Columns []string

	// Seed and Epoch select the order: with Shuffle, the row groups are permuted (files,
	// then row groups within each file) by (Seed, Epoch) and rows pass through a seeded
	// buffer of ShuffleBuffer rows (DefaultShuffleBuffer when <= 0).
	Seed          int64
	Epoch         int
	Shuffle       bool
	ShuffleBuffer int

	// Rank and World split the epoch's row groups across processes: rank r reads the
	// row groups at positions r, r+World, ... of the epoch's order, so ranks are disjoint
	// and together cover every row. World <= 0 means 1.
	Rank, World int

	// Workers read row groups in parallel (DefaultWorkers when <= 0); the emitted order does
	// not depend on their number.
	Workers int

	// Skip drops the first Skip samples of this rank's epoch sequence without decoding them,
	// so a run resumes exactly at sample index Skip.
	Skip int64

	// Mapping maps foreign column names; nil detects it per file (DetectMapping).
	Mapping *Mapping

	// Limits bound sizes read from the files (zero fields: DefaultLimits).
	Limits Limits
}

// Reader defaults.
const (
	DefaultShuffleBuffer = 2048
	DefaultWorkers       = 2
)

// Position locates a sample: where it is stored and where it falls in the epoch.
type Position struct {
	File     string // path as given to Read
	FileNum  int    // index of File in the files given to Read
	RowGroup int    // row group within the file
	Row      int    // row within the row group
	FileRow  int64  // row within the file
	Index    int64  // index in this rank's sequence for the epoch (counts skipped samples)
}

// Sample is one record read from a shard with its position.
type Sample struct {
	Record
	Pos Position
}

// unit is one row group to read: the grain of ordering, rank splitting and parallelism.
type unit struct {
	file     int
	rowGroup int
	firstRow int64 // file row of the group's first row
	rows     int
}

// Plan is the fixed sequence of row groups one rank reads in one epoch, made from the
// files' footers. It lets a caller know the epoch's length before reading.
type Plan struct {
	files   []string
	opts    ReadOptions
	lim     Limits
	columns []string
	units   []unit // this rank's row groups, in reading order
	samples int64
}

// NewPlan reads the footers of files, checks that the requested columns can be read from
// each, and orders the row groups for opts' epoch and rank.
func NewPlan(files []string, opts ReadOptions) (*Plan, error) {
	if opts.World <= 0 {
		opts.World = 1
	}
	if opts.Rank < 0 || opts.Rank >= opts.World {
		return nil, fmt.Errorf("shard read: rank %d outside world of %d", opts.Rank, opts.World)
	}
	if opts.Workers <= 0 {
		opts.Workers = DefaultWorkers
	}
	if opts.ShuffleBuffer <= 0 {
		opts.ShuffleBuffer = DefaultShuffleBuffer
	}
	if opts.Skip < 0 {
		return nil, fmt.Errorf("shard read: negative skip %d", opts.Skip)
	}
	p := &Plan{files: files, opts: opts, lim: opts.Limits.withDefaults(), columns: opts.Columns}
	if p.columns == nil {
		p.columns = AllColumns
	}
	perFile := make([][]unit, len(files))
	for i, path := range files {
		f, err := openParquet(path, p.lim)
		if err != nil {
			return nil, err
		}
		_, err = resolve(f.pf, path, p.columns, opts.Mapping)
		var first int64
		for g, rg := range f.pf.Metadata().RowGroups {
			perFile[i] = append(perFile[i], unit{file: i, rowGroup: g, firstRow: first, rows: int(rg.NumRows)})
			first += rg.NumRows
		}
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("shard %s: %w", path, err)
		}
	}
	order := make([]int, len(files))
	for i := range order {
		order[i] = i
	}
	var rng *rand.Rand
	if opts.Shuffle {
		rng = newRand(opts.Seed, opts.Epoch, -1)
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	}
	k := 0
	for _, fi := range order {
		us := perFile[fi]
		if rng != nil {
			rng.Shuffle(len(us), func(i, j int) { us[i], us[j] = us[j], us[i] })
		}
		for _, u := range us {
			if k%opts.World == opts.Rank {
				p.units = append(p.units, u)
				p.samples += int64(u.rows)
			}
			k++
		}
	}
	return p, nil
}

// Samples is the number of samples in this rank's epoch (before Skip).
func (p *Plan) Samples() int64 { return p.samples }

// RowGroups is the number of row groups this rank reads in the epoch.
func (p *Plan) RowGroups() int { return len(p.units) }

// newRand returns the generator for (seed, epoch, stream); stream -1 orders row groups,
// stream r >= 0 drives rank r's shuffle buffer.
func newRand(seed int64, epoch, stream int) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), uint64(epoch)<<32^uint64(uint32(stream))^0x9e3779b97f4a7c15))
}

// Read streams the samples of files to emit, one row group at a time per worker, in the
// deterministic order of opts. It stops at the first error from a file or from emit, or
// when ctx is done. emit owns each Sample it receives.
func Read(ctx context.Context, files []string, opts ReadOptions, emit func(Sample) error) error {
	p, err := NewPlan(files, opts)
	if err != nil {
		return err
	}
	return p.Read(ctx, emit)
}

// item is a sample in the shuffle buffer; a skipped one carries no record and is not emitted.
type item struct {
	rec     Record
	pos     Position
	skipped bool
}

// shuffler is a bounded random-replacement buffer: once full, each new item takes the
// place of a uniformly chosen one, which leaves. Its order depends only on the seed and
// the input order.
type shuffler[T any] struct {
	buf  []T
	size int
	rng  *rand.Rand
}

func (s *shuffler[T]) push(x T) (T, bool) {
	if s.rng == nil {
		return x, true
	}
	if len(s.buf) < s.size {
		s.buf = append(s.buf, x)
		var zero T
		return zero, false
	}
	j := s.rng.IntN(s.size)
	out := s.buf[j]
	s.buf[j] = x
	return out, true
}

func (s *shuffler[T]) pop() (T, bool) {
	var zero T
	if len(s.buf) == 0 {
		return zero, false
	}
	j := s.rng.IntN(len(s.buf))
	out := s.buf[j]
	last := len(s.buf) - 1
	s.buf[j] = s.buf[last]
	s.buf[last] = zero
	s.buf = s.buf[:last]
	return out, true
}

func (p *Plan) newShuffler() *shuffler[item] {
	if !p.opts.Shuffle {
		return &shuffler[item]{}
	}
	return &shuffler[item]{size: p.opts.ShuffleBuffer, rng: newRand(p.opts.Seed, p.opts.Epoch, p.opts.Rank)}
}

// skipMarks returns, per unit, which rows fall among the first Skip samples of the
// epoch; it replays the shuffle buffer on positions alone, without reading data.
func (p *Plan) skipMarks() [][]bool {
	if p.opts.Skip == 0 {
		return nil
	}
	marks := make([][]bool, len(p.units))
	mark := func(u, row int) {
		if marks[u] == nil {
			marks[u] = make([]bool, p.units[u].rows)
		}
		marks[u][row] = true
	}
	type at struct{ u, row int }
	var s *shuffler[at]
	if p.opts.Shuffle {
		s = &shuffler[at]{size: p.opts.ShuffleBuffer, rng: newRand(p.opts.Seed, p.opts.Epoch, p.opts.Rank)}
	} else {
		s = &shuffler[at]{}
	}
	left := p.opts.Skip
	for u, un := range p.units {
		for row := 0; row < un.rows && left > 0; row++ {
			if out, ok := s.push(at{u, row}); ok {
				mark(out.u, out.row)
				left--
			}
		}
		if left == 0 {
			return marks
		}
	}
	for left > 0 {
		out, ok := s.pop()
		if !ok {
			break
		}
		mark(out.u, out.row)
		left--
	}
	return marks
}

// result is a decoded row group, delivered to the ordered consumer.
type result struct {
	recs []Record
	err  error
}

type task struct {
	u    int
	skip []bool
	res  chan result
}

// Read streams this plan's samples to emit (see the package-level Read).
func (p *Plan) Read(ctx context.Context, emit func(Sample) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	marks := p.skipMarks()
	handles := newHandles(p, marks)
	defer handles.closeAll()

	tasks := make(chan task)
	pending := make(chan chan result, 2*p.opts.Workers)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // producer: row groups in order
		defer wg.Done()
		defer close(pending)
		defer close(tasks)
		for u := range p.units {
			res := make(chan result, 1)
			select {
			case pending <- res:
			case <-ctx.Done():
				return
			}
			if all(marks, u) { // every row skipped: nothing to read
				res <- result{}
				continue
			}
			select {
			case tasks <- task{u: u, skip: markOf(marks, u), res: res}:
			case <-ctx.Done():
				return
			}
		}
	}()
	for range p.opts.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for t := range tasks {
				t.res <- p.readUnit(handles, t.u, t.skip)
			}
		}()
	}
	err := p.consume(ctx, pending, marks, emit)
	cancel()
	wg.Wait()
	return err
}

func all(marks [][]bool, u int) bool {
	if marks == nil || marks[u] == nil {
		return false
	}
	for _, m := range marks[u] {
		if !m {
			return false
		}
	}
	return true
}

func markOf(marks [][]bool, u int) []bool {
	if marks == nil {
		return nil
	}
	return marks[u]
}

func (p *Plan) readUnit(h *handles, u int, skip []bool) result {
	un := p.units[u]
	f, lay, err := h.acquire(un.file)
	if err != nil {
		return result{err: err}
	}
	defer h.release(un.file)
	recs, err := readRowGroup(f, lay, un.rowGroup, un.firstRow, skip, p.lim)
	if err == nil && len(recs) != un.rows {
		err = fmt.Errorf("shard %s row group %d: %d rows, %d when planned (file changed while reading?)", f.path, un.rowGroup, len(recs), un.rows)
	}
	return result{recs: recs, err: err}
}

// consume takes decoded row groups in plan order, passes their rows through the shuffle
// buffer and emits them with their positions.
func (p *Plan) consume(ctx context.Context, pending chan chan result, marks [][]bool, emit func(Sample) error) error {
	s := p.newShuffler()
	var index int64
	out := func(it item) error {
		it.pos.Index = index
		index++
		if it.skipped {
			return nil
		}
		return emit(Sample{Record: it.rec, Pos: it.pos})
	}
	u := 0
	for res := range pending {
		var r result
		select {
		case r = <-res:
		case <-ctx.Done():
			return ctx.Err()
		}
		if r.err != nil {
			return r.err
		}
		un := p.units[u]
		mk := markOf(marks, u)
		for row := range un.rows {
			it := item{pos: Position{
				File: p.files[un.file], FileNum: un.file, RowGroup: un.rowGroup,
				Row: row, FileRow: un.firstRow + int64(row),
			}}
			if mk != nil && mk[row] {
				it.skipped = true
			} else {
				it.rec = r.recs[row]
			}
			if o, ok := s.push(it); ok {
				if err := out(o); err != nil {
					return err
				}
			}
		}
		u++
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if u != len(p.units) {
		return errors.New("shard read: stopped early")
	}
	for {
		o, ok := s.pop()
		if !ok {
			return nil
		}
		if err := out(o); err != nil {
			return err
		}
	}
}

// handles shares one open file among the workers reading its row groups, opening it on
// first use and closing it after its last planned row group.
type handles struct {
	p     *Plan
	mu    sync.Mutex
	files map[int]*handle
}

type handle struct {
	once sync.Once
	f    *parquetFile
	lay  *layout
	err  error
	left int // row groups still to read
}

func newHandles(p *Plan, marks [][]bool) *handles {
	h := &handles{p: p, files: make(map[int]*handle)}
	for u, un := range p.units {
		if all(marks, u) {
			continue
		}
		if h.files[un.file] == nil {
			h.files[un.file] = &handle{}
		}
		h.files[un.file].left++
	}
	return h
}

func (h *handles) acquire(file int) (*parquetFile, *layout, error) {
	h.mu.Lock()
	fh := h.files[file]
	h.mu.Unlock()
	fh.once.Do(func() {
		path := h.p.files[file]
		f, err := openParquet(path, h.p.lim)
		if err != nil {
			fh.err = err
			return
		}
		lay, err := resolve(f.pf, path, h.p.columns, h.p.opts.Mapping)
		if err != nil {
			f.Close()
			fh.err = fmt.Errorf("shard %s: %w", path, err)
			return
		}
		fh.f, fh.lay = f, lay
	})
	return fh.f, fh.lay, fh.err
}

func (h *handles) release(file int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	fh := h.files[file]
	fh.left--
	if fh.left == 0 && fh.f != nil {
		fh.f.Close()
		fh.f = nil
	}
}

func (h *handles) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, fh := range h.files {
		if fh.f != nil {
			fh.f.Close()
			fh.f = nil
		}
	}
}
