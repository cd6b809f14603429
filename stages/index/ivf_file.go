package index

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"slices"

	"github.com/clipgo/clipgo/internal/atomicfile"
	"github.com/clipgo/clipgo/internal/fileinput"
)

// IVF file format (version 1), written beside an index INDEX.parquet as INDEX.parquet.ivf by
// `clipgo embed --index ivf` (IVFPath). All integers and floats are little-endian; floats are
// IEEE float32; CRCs are CRC-32C (Castagnoli).
//
//	magic      8 bytes  "CLIPIVF\x00"
//	version    u32      1
//	dim        u32      E, as the index's clipgo.embed_dim
//	rows       u64      N, the index's rows
//	parquet    32 bytes SHA-256 of the Parquet index's footer (the bytes between the last row
//	                    group and the footer length): ties the file to the index it was built
//	                    from; a rewritten index has another footer
//	sections   u32      1 or 2, then each section:
//	  name_len u32      ≤ 64, then the column name: image_embedding or text_embedding
//	  lists    u32      L, 1 ≤ L ≤ N
//	  centroids L·E f32 unit rows
//	  offsets  (L+1) u64 offsets[0] = 0, non-decreasing, offsets[L] = N: list l holds entries
//	                    offsets[l] .. offsets[l+1]-1
//	  list_crc L u32    CRC-32C of each list's vector bytes
//	  rows     N u32    the index row of each entry: a permutation of 0 .. N-1
//	  inv_norm N f32    1/‖v‖ of each entry, 0 for a zero vector
//	  head_crc u32      CRC-32C of the section from name_len to inv_norm
//	  vectors  N·E f32  the entries' vectors, list by list, exactly as in the Parquet column
//
// OpenIVF reads a section's head (its size checked against the file's before anything is
// allocated) and leaves the vectors on disk: a query reads only the lists it probes, each
// checked against its CRC.
const (
	ivfMagic   = "CLIPIVF\x00"
	ivfVersion = 1
	ivfMaxName = 64
)

var ivfCRC = crc32.MakeTable(crc32.Castagnoli)

// IVFPath returns the path of the IVF file beside index.
func IVFPath(index string) string { return index + ".ivf" }

// WriteIVF writes the IVF sections (column name → index) of the index whose footer hash is
// parquetSum to path, atomically. Sections are written in the order of cols.
func WriteIVF(path string, dim, rows int, parquetSum [32]byte, cols []string, sections []*IVF) error {
	if len(cols) != len(sections) || len(cols) == 0 || len(cols) > 2 {
		return fmt.Errorf("ivf %s: %d sections for %d columns", path, len(sections), len(cols))
	}
	tmp, err := atomicfile.Create(path)
	if err != nil {
		return fmt.Errorf("ivf: %w", err)
	}
	w := bufio.NewWriterSize(tmp, 1<<20)
	le := binary.LittleEndian
	var hdr []byte
	hdr = append(hdr, ivfMagic...)
	hdr = le.AppendUint32(hdr, ivfVersion)
	hdr = le.AppendUint32(hdr, uint32(dim))
	hdr = le.AppendUint64(hdr, uint64(rows))
	hdr = append(hdr, parquetSum[:]...)
	hdr = le.AppendUint32(hdr, uint32(len(sections)))
	_, err = w.Write(hdr)
	for s, x := range sections {
		if err != nil {
			break
		}
		if x.Dim != dim || x.Len() != rows || x.Vectors == nil {
			err = fmt.Errorf("section %s: %d rows of width %d in memory, want %d of %d", cols[s], x.Len(), x.Dim, rows, dim)
			break
		}
		err = writeIVFSection(w, cols[s], x)
	}
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		tmp.Abort()
		return fmt.Errorf("ivf %s: %w", path, err)
	}
	return tmp.Commit()
}

func writeIVFSection(w io.Writer, col string, x *IVF) error {
	le := binary.LittleEndian
	L, dim := x.Lists(), x.Dim
	head := make([]byte, 0, 8+len(col)+4*L*dim+8*(L+1)+4*L+8*x.Len())
	head = le.AppendUint32(head, uint32(len(col)))
	head = append(head, col...)
	head = le.AppendUint32(head, uint32(L))
	head = appendFloats(head, x.Centroids)
	for _, o := range x.Offsets {
		head = le.AppendUint64(head, uint64(o))
	}
	var buf []byte
	for l := range L {
		buf = appendFloats(buf[:0], x.Vectors[int(x.Offsets[l])*dim:int(x.Offsets[l+1])*dim])
		head = le.AppendUint32(head, crc32.Checksum(buf, ivfCRC))
	}
	for _, r := range x.Rows {
		head = le.AppendUint32(head, uint32(r))
	}
	head = appendFloats(head, x.InvNorms)
	head = le.AppendUint32(head, crc32.Checksum(head, ivfCRC))
	if _, err := w.Write(head); err != nil {
		return err
	}
	for l := range L { // vectors, a list at a time
		buf = appendFloats(buf[:0], x.Vectors[int(x.Offsets[l])*dim:int(x.Offsets[l+1])*dim])
		if _, err := w.Write(buf); err != nil {
			return err
		}
	}
	return nil
}

func appendFloats(b []byte, v []float32) []byte {
	for _, f := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(f))
	}
	return b
}

// IVFFile is an open IVF file: the heads of its sections in memory, the vectors on disk.
type IVFFile struct {
	path       string
	f          *os.File
	Dim        int
	Rows       int
	ParquetSum [32]byte
	sections   map[string]*IVF
}

// Close closes the file.
func (v *IVFFile) Close() error { return v.f.Close() }

// Section returns the index of column col, nil if the file has none.
func (v *IVFFile) Section(col string) *IVF { return v.sections[col] }

// OpenIVF opens an IVF file and checks it (see the format above) before its vectors are
// read; lim bounds its rows and width as it bounds an index's.
func OpenIVF(path string, lim Limits) (_ *IVFFile, err error) {
	lim = lim.withDefaults()
	f, err := fileinput.OpenRegular(path) // a FIFO is refused, not waited on
	if err != nil {
		return nil, fmt.Errorf("ivf: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("ivf: %w", err)
	}
	v, err := readIVF(f, st.Size(), lim)
	if err != nil {
		return nil, fmt.Errorf("ivf %s: %w", path, err)
	}
	v.path, v.f = path, f
	return v, nil
}

// ivfReader reads a file from the start, knowing its size, so that every length read can be
// checked against what is left before anything is allocated for it.
type ivfReader struct {
	r    io.ReaderAt
	pos  int64
	size int64
}

func (r *ivfReader) read(n int64, what string) ([]byte, error) {
	if n < 0 || n > r.size-r.pos {
		return nil, fmt.Errorf("%s: %d bytes at offset %d, but the file has %d (truncated or corrupt)", what, n, r.pos, r.size)
	}
	b := make([]byte, n)
	if _, err := r.r.ReadAt(b, r.pos); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	r.pos += n
	return b, nil
}

func readIVF(f io.ReaderAt, size int64, lim Limits) (*IVFFile, error) {
	le := binary.LittleEndian
	r := &ivfReader{r: f, size: size}
	h, err := r.read(8+4+4+8+32+4, "header")
	if err != nil {
		return nil, err
	}
	if string(h[:8]) != ivfMagic {
		return nil, errors.New("not a clipgo IVF file (bad magic): rebuild it with clipgo embed --index ivf")
	}
	if ver := le.Uint32(h[8:]); ver != ivfVersion {
		return nil, fmt.Errorf("IVF format version %d is not supported (this build reads %d): rebuild it with clipgo embed --index ivf", ver, ivfVersion)
	}
	dim, rows := int64(le.Uint32(h[12:])), le.Uint64(h[16:])
	if dim < 1 || dim > int64(lim.MaxDim) {
		return nil, fmt.Errorf("width %d outside [1, %d]", dim, lim.MaxDim)
	}
	if rows < 1 || rows > uint64(lim.MaxRows) || rows > math.MaxInt32 {
		return nil, fmt.Errorf("%d rows outside [1, %d]", rows, min(lim.MaxRows, math.MaxInt32))
	}
	v := &IVFFile{Dim: int(dim), Rows: int(rows), sections: map[string]*IVF{}}
	copy(v.ParquetSum[:], h[24:56])
	nsec := le.Uint32(h[56:])
	if nsec < 1 || nsec > 2 {
		return nil, fmt.Errorf("%d sections, want 1 or 2", nsec)
	}
	n := int64(rows)
	for s := range nsec {
		x, col, err := readIVFSection(r, int(dim), n)
		if err != nil {
			return nil, fmt.Errorf("section %d: %w", s, err)
		}
		if v.sections[col] != nil {
			return nil, fmt.Errorf("section %d: column %s a second time", s, col)
		}
		v.sections[col] = x
	}
	if r.pos != size {
		return nil, fmt.Errorf("%d bytes after the last section", size-r.pos)
	}
	return v, nil
}

// readIVFSection reads one section's head and skips its vectors, which stay on disk.
func readIVFSection(r *ivfReader, dim int, n int64) (*IVF, string, error) {
	le := binary.LittleEndian
	b, err := r.read(4, "column name length")
	if err != nil {
		return nil, "", err
	}
	nameLen := int64(le.Uint32(b))
	if nameLen > ivfMaxName {
		return nil, "", fmt.Errorf("column name of %d bytes (limit %d)", nameLen, ivfMaxName)
	}
	name, err := r.read(nameLen, "column name")
	if err != nil {
		return nil, "", err
	}
	col := string(name)
	if col != ColImageEmbedding && col != ColTextEmbedding {
		return nil, "", fmt.Errorf("column %q: want %s or %s", clipString(col, ivfMaxName), ColImageEmbedding, ColTextEmbedding)
	}
	if b, err = r.read(4, "list count"); err != nil {
		return nil, "", err
	}
	L := int64(le.Uint32(b))
	if L < 1 || L > n {
		return nil, "", fmt.Errorf("%s: %d lists for %d rows", col, L, n)
	}
	d := int64(dim)
	// The whole head and the vectors must fit in what is left, before any of it is allocated.
	headLen := 4*L*d + 8*(L+1) + 4*L + 4*n + 4*n + 4
	if need := headLen + 4*n*d; need > r.size-r.pos {
		return nil, "", fmt.Errorf("%s: %d lists of %d rows need %d more bytes, the file has %d (truncated or corrupt)", col, L, n, need, r.size-r.pos)
	}
	head, err := r.read(headLen, col+" head")
	if err != nil {
		return nil, "", err
	}
	// The head CRC covers name_len .. inv_norm: the 8+len(name) bytes before the head, then it.
	pre := le.AppendUint32(nil, uint32(nameLen))
	pre = le.AppendUint32(append(pre, name...), uint32(L))
	if got, want := crc32.Update(crc32.Checksum(pre, ivfCRC), ivfCRC, head[:headLen-4]), le.Uint32(head[headLen-4:]); got != want {
		return nil, "", fmt.Errorf("%s: head CRC %08x, recorded %08x (corrupt file)", col, got, want)
	}
	x := &IVF{Dim: dim, Centroids: make([]float32, L*d), Offsets: make([]int64, L+1), Rows: make([]int32, n), InvNorms: make([]float32, n)}
	p := head
	for i := range x.Centroids {
		x.Centroids[i] = math.Float32frombits(le.Uint32(p))
		if c := float64(x.Centroids[i]); math.IsNaN(c) || math.IsInf(c, 0) {
			return nil, "", fmt.Errorf("%s: centroid %d is not finite", col, int64(i)/d)
		}
		p = p[4:]
	}
	for l := range x.Offsets {
		o := le.Uint64(p)
		p = p[8:]
		if o > uint64(n) || (l > 0 && int64(o) < x.Offsets[l-1]) || (l == 0 && o != 0) {
			return nil, "", fmt.Errorf("%s: list offset %d = %d is not in order within [0, %d]", col, l, o, n)
		}
		x.Offsets[l] = int64(o)
	}
	if x.Offsets[L] != n {
		return nil, "", fmt.Errorf("%s: the lists hold %d rows, the file says %d", col, x.Offsets[L], n)
	}
	crcs := make([]uint32, L)
	for l := range crcs {
		crcs[l] = le.Uint32(p)
		p = p[4:]
	}
	seen := make([]bool, n)
	for e := range x.Rows {
		row := le.Uint32(p)
		p = p[4:]
		if int64(row) >= n || seen[row] {
			return nil, "", fmt.Errorf("%s: entry %d names row %d: not a permutation of the %d rows", col, e, row, n)
		}
		seen[row] = true
		x.Rows[e] = int32(row)
	}
	for e := range x.InvNorms {
		x.InvNorms[e] = math.Float32frombits(le.Uint32(p))
		p = p[4:]
		if c := float64(x.InvNorms[e]); math.IsNaN(c) || math.IsInf(c, 0) || c < 0 {
			return nil, "", fmt.Errorf("%s: entry %d: inverse norm %v", col, e, c)
		}
	}
	base := r.pos
	r.pos += 4 * n * d // the vectors, left on disk
	x.list = func(l int, sc *listScratch) ([]float32, error) {
		cnt := (x.Offsets[l+1] - x.Offsets[l]) * d
		sc.raw = slices.Grow(sc.raw[:0], int(4*cnt))[:4*cnt]
		raw := sc.raw
		if _, err := r.r.ReadAt(raw, base+4*x.Offsets[l]*d); err != nil {
			return nil, fmt.Errorf("ivf %s list %d: %w", col, l, err)
		}
		if got := crc32.Checksum(raw, ivfCRC); got != crcs[l] {
			return nil, fmt.Errorf("ivf %s list %d: CRC %08x, recorded %08x (corrupt file)", col, l, got, crcs[l])
		}
		sc.vecs = slices.Grow(sc.vecs[:0], int(cnt))[:cnt]
		for i := range sc.vecs {
			sc.vecs[i] = math.Float32frombits(le.Uint32(raw[4*i:]))
		}
		return sc.vecs, nil
	}
	return x, col, nil
}

// parquetFooterSHA256 returns the SHA-256 of the Parquet file's footer (its metadata, which
// names every row group's offsets and sizes and the key-value metadata): what an IVF file
// records to know the index it was built from. The footer is bounded by max bytes.
func parquetFooterSHA256(f io.ReaderAt, size, max int64) ([32]byte, error) {
	if size < 12 {
		return [32]byte{}, fmt.Errorf("%d bytes: too short for Parquet", size)
	}
	var tail [8]byte
	if _, err := f.ReadAt(tail[:], size-8); err != nil {
		return [32]byte{}, err
	}
	if string(tail[4:]) != "PAR1" {
		return [32]byte{}, errors.New("not a Parquet file (no PAR1 trailer)")
	}
	n := int64(binary.LittleEndian.Uint32(tail[:4]))
	if n > max || n > size-12 {
		return [32]byte{}, fmt.Errorf("footer of %d bytes in a %d-byte file (limit %d)", n, size, max)
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, size-8-n, n)); err != nil {
		return [32]byte{}, err
	}
	return [32]byte(h.Sum(nil)), nil
}
