package queue

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// This file knows go-diskqueue's (v1.1.0) files: the data files
// <name>.diskqueue.NNNNNN.dat and the metadata file
// <name>.diskqueue.meta.dat. The queue reads the metadata to size its
// backlog at Open, and writes it where go-diskqueue would otherwise start
// over and overwrite data, or miscount it (see repairMetadata).

// dqMeta is the content of go-diskqueue's metadata file: the number of
// records not yet read, and the read and write positions as data file
// number and byte offset.
type dqMeta struct {
	depth              int64
	readNum, readPos   int64
	writeNum, writePos int64
}

// metaFormat is go-diskqueue's metadata format, for reading and writing.
const metaFormat = "%d\n%d,%d\n%d,%d\n"

func metaPath(dir, name string) string {
	return filepath.Join(dir, name+".diskqueue.meta.dat")
}

func dataPath(dir, name string, num int64) string {
	return filepath.Join(dir, fmt.Sprintf("%s.diskqueue.%06d.dat", name, num))
}

// parseMeta parses the content of a metadata file as go-diskqueue does,
// and refuses positions go-diskqueue never writes: negative ones, or a
// read position after the write position. Such metadata is damaged, and
// trusting it would have go-diskqueue read from a file number no file has
// (stepping through every number up to the next one) or at an offset no
// read can take. A negative depth is let through: a count gone wrong
// leaves one, and repairMetadata recounts it.
func parseMeta(b []byte) (dqMeta, error) {
	var m dqMeta
	if _, err := fmt.Sscanf(string(b), metaFormat, &m.depth, &m.readNum, &m.readPos, &m.writeNum, &m.writePos); err != nil {
		return dqMeta{}, fmt.Errorf("parse metadata: %w", err)
	}
	if m.readNum == readUnknown && m.readPos == readUnknown && m.writeNum >= 0 && m.writePos >= 0 && m.writeNum < readUnknown {
		// Written by go-diskqueue while the queue ran (reader.go).
		return m, fmt.Errorf("parse metadata: %w", errNoReadPos)
	}
	if m.readNum < 0 || m.readPos < 0 || m.writeNum < 0 || m.writePos < 0 ||
		m.readNum > m.writeNum || (m.readNum == m.writeNum && m.readPos > m.writePos) {
		return dqMeta{}, fmt.Errorf("parse metadata: impossible positions: read %d,%d, write %d,%d", m.readNum, m.readPos, m.writeNum, m.writePos)
	}
	return m, nil
}

func (m dqMeta) format() []byte {
	return fmt.Appendf(nil, metaFormat, m.depth, m.readNum, m.readPos, m.writeNum, m.writePos)
}

// unreadBytes estimates, from go-diskqueue's metadata and file sizes, how
// many bytes of records wait in the queue's data files. After a crash the
// metadata may be stale, which makes this an overestimate by at most what
// was read since the last sync.
func unreadBytes(dir, name string) int64 {
	b, err := os.ReadFile(metaPath(dir, name))
	if err != nil {
		return 0
	}
	m, err := parseMeta(b)
	if err != nil {
		return 0
	}
	var n int64
	for num := m.readNum; ; num++ {
		fi, err := os.Stat(dataPath(dir, name, num))
		if err != nil {
			break
		}
		n += fi.Size()
		if num == m.readNum {
			n -= min(m.readPos, fi.Size())
		}
	}
	return max(n, 0)
}

// dqMinMsgSize is the smallest record length Open lets go-diskqueue read
// (maxRecordLen the largest): a length prefix outside them stops its reader.
const dqMinMsgSize = 1

// repairMetadata makes go-diskqueue's metadata count every record in the
// queue's data files before go-diskqueue opens them, and returns how many
// records it added to the count.
//
// go-diskqueue writes its metadata only when it syncs. After a kill -9 its
// data files may hold records written since the last sync, past the write
// position on disk; and the metadata may be missing: Empty deletes it, and a
// crash before the next sync leaves none, as does a brand-new queue killed
// before its first sync. Without metadata go-diskqueue starts over at file 0
// and overwrites the data. With stale metadata it does read the extra
// records (it moves its writer to a new file), but its depth does not count
// them, so it reads 0, then less, while records are still unread, and the
// queue would empty files that hold them (see reclaimIfDrained).
//
// repairMetadata counts the whole records past the recorded write position
// (past the read position if there is no metadata, or if its depth is
// negative, which a count gone wrong before left), adds them to the depth and
// moves the writer to a new data file, as go-diskqueue itself does when it
// finds its write file longer than recorded. The new file matters for
// duplicates: when go-diskqueue's reader moves on to it, having read the
// recovered records, it persists its read position, so a second crash soon
// after does not deliver them again. A torn record (a write the kill cut
// short) or damage ends the count in its file; go-diskqueue's reader fails
// there and the salvage (salvage.go) scans the rest, putting any intact
// record back, which counts it again.
func repairMetadata(dir, name string) (added int64, err error) {
	meta := metaPath(dir, name)
	var m dqMeta
	valid, noReadPos := false, false
	b, err := os.ReadFile(meta)
	switch {
	case err == nil:
		if m, err = parseMeta(b); err == nil {
			valid = true
			break
		}
		if errors.Is(err, errNoReadPos) {
			// Not damaged: the write position is go-diskqueue's as of
			// its last sync, and the read position is set below.
			valid, noReadPos = true, true
			break
		}
		// go-diskqueue would start over at file 0 on a metadata file it
		// cannot read and overwrite the data there: keep the damaged file
		// for inspection and describe the data files instead.
		if err := os.Rename(meta, meta+".corrupt"); err != nil {
			return 0, fmt.Errorf("set damaged metadata aside: %w", err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return 0, fmt.Errorf("read metadata: %w", err)
	}
	nums, err := dataFileNums(dir, name)
	if err != nil {
		return 0, err
	}
	if noReadPos {
		// The queue ran and did not stop cleanly: it reads from the start
		// of the oldest data file (it deletes files once read), skipping
		// what was taken there by its sequence number, and recounts the
		// records from there.
		m.readNum, m.readPos, m.depth = m.writeNum, 0, -1
		if len(nums) > 0 {
			m.readNum = nums[0]
		}
		if m.readNum > m.writeNum {
			// Files newer than the write position go-diskqueue synced
			// last (it started on them after emptying drained ones).
			m.writeNum, m.writePos = m.readNum, 0
		}
	}
	if valid && !chained(m, nums) {
		// Read and write positions with no files between them for
		// longer than go-diskqueue's reader can step: as damaged as
		// metadata that does not parse.
		if err := os.Rename(meta, meta+".corrupt"); err != nil {
			return 0, fmt.Errorf("set damaged metadata aside: %w", err)
		}
		valid = false
	}
	if !valid {
		if len(nums) == 0 {
			// An empty first data file keeps go-diskqueue from logging an
			// error about a missing file when the queue is reopened before
			// any write.
			if err := createEmpty(dataPath(dir, name, 0)); err != nil {
				return 0, fmt.Errorf("create data file: %w", err)
			}
			return 0, writeMeta(dir, meta, dqMeta{})
		}
		m = dqMeta{readNum: nums[0], writeNum: nums[0]}
	}
	if nums, err = setAsideStray(dir, name, m.writeNum, nums); err != nil {
		return 0, err
	}
	// Count from the write position, on top of the recorded depth, which
	// counts the records before it; or recount everything unread.
	repaired := m
	from, fromPos := m.writeNum, m.writePos
	if m.depth < 0 || !valid {
		repaired.depth = 0
		from, fromPos = m.readNum, m.readPos
	}
	// Only the files there are: a stray file with a far higher number
	// must not make this walk every number in between.
	for _, num := range nums {
		if num < from {
			continue
		}
		pos := int64(0)
		if num == from {
			pos = fromPos
		}
		n, size, err := scanWholeRecords(dataPath(dir, name, num), pos)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, err
		}
		repaired.depth += n
		if size > 0 && (num > m.writeNum || (num == m.writeNum && size > m.writePos)) {
			repaired.writeNum, repaired.writePos = num+1, 0
		}
	}
	if valid && repaired == m {
		return 0, nil
	}
	if err := writeMeta(dir, meta, repaired); err != nil {
		return 0, err
	}
	return repaired.depth - max(m.depth, 0), nil
}

// maxFileGap is the most file numbers go-diskqueue's reader is left to
// step through without a file: it reads every number from its read
// position to its write position, and a missing file costs it one failed
// read (and a log line), so a stray data file numbered 999999999999
// beside file 0 would keep it stepping for ever.
const maxFileGap = 1024

// chained reports whether go-diskqueue's reader gets from m's read to its
// write position over the data files nums without a gap above maxFileGap.
func chained(m dqMeta, nums []int64) bool {
	prev := m.readNum
	for _, num := range nums {
		if num > m.readNum && num <= m.writeNum {
			if num-prev > maxFileGap {
				return false
			}
			prev = num
		}
	}
	return m.writeNum-prev <= maxFileGap
}

// setAsideStray renames the data files past writeNum that lie beyond a gap
// above maxFileGap to *.bad, where the salvage takes their records back
// onto the queue, and returns the numbers of the files left.
func setAsideStray(dir, name string, writeNum int64, nums []int64) ([]int64, error) {
	prev := writeNum
	for i, num := range nums {
		if num <= writeNum {
			continue
		}
		if num-prev <= maxFileGap {
			prev = num
			continue
		}
		for _, stray := range nums[i:] {
			path := dataPath(dir, name, stray)
			if _, err := os.Lstat(path + ".bad"); err == nil {
				return nil, fmt.Errorf("set aside stray data file %s: %s.bad exists", filepath.Base(path), filepath.Base(path))
			}
			if err := os.Rename(path, path+".bad"); err != nil {
				return nil, fmt.Errorf("set aside stray data file: %w", err)
			}
		}
		return nums[:i], syncDir(dir)
	}
	return nums, nil
}

// scanWholeRecords reads the length prefixes in the data file at path from pos
// on, as go-diskqueue's reader would, and returns the number of whole
// records up to the end or the first bad length, and the file's size.
func scanWholeRecords(path string, pos int64) (n, size int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, 0, err
	}
	size = fi.Size()
	if pos >= size {
		return 0, size, nil
	}
	r := bufio.NewReaderSize(io.NewSectionReader(f, pos, size-pos), 64<<10)
	var hdr [4]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return n, size, nil
			}
			return 0, 0, fmt.Errorf("count records in %s: %w", filepath.Base(path), err)
		}
		l := int64(binary.BigEndian.Uint32(hdr[:]))
		if l < dqMinMsgSize || l > maxRecordLen || pos+4+l > size {
			return n, size, nil
		}
		if _, err := r.Discard(int(l)); err != nil {
			return 0, 0, fmt.Errorf("count records in %s: %w", filepath.Base(path), err)
		}
		n++
		pos += 4 + l
	}
}

func createEmpty(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	return f.Close()
}

// writeMeta replaces the metadata file atomically and durably.
func writeMeta(dir, meta string, m dqMeta) error {
	return writeMetaMode(dir, meta, m, true)
}

// writeMetaMode replaces the metadata file atomically, and durably if
// durable is set.
func writeMetaMode(dir, meta string, m dqMeta, durable bool) error {
	tmp := meta + ".repair.tmp"
	write := writeFileSync
	if !durable {
		write = func(path string, b []byte) error { return os.WriteFile(path, b, 0o600) }
	}
	if err := write(tmp, m.format()); err != nil {
		_ = os.Remove(tmp)
		// On a disk full of the queue's own backlog no new file can be
		// written, and a queue that then failed to open would never send
		// the backlog that frees the space. The existing metadata file's
		// block is already allocated: overwrite it in place (a few dozen
		// bytes within one block).
		if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
			if ierr := overwriteInPlace(meta, m.format()); ierr == nil {
				return nil
			}
		}
		return fmt.Errorf("write metadata: %w", err)
	}
	if err := os.Rename(tmp, meta); err != nil {
		return fmt.Errorf("write metadata: %w", err)
	}
	if !durable {
		return nil
	}
	return syncDir(dir)
}

// dataFileNums returns the numbers of the queue's data files, in order.
func dataFileNums(dir, name string) ([]int64, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	prefix := name + ".diskqueue."
	var nums []int64
	for _, de := range des {
		n := de.Name()
		if !strings.HasPrefix(n, prefix) || !strings.HasSuffix(n, ".dat") || strings.HasSuffix(n, ".meta.dat") {
			continue
		}
		num, perr := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(n, prefix), ".dat"), 10, 64)
		if perr != nil || num < 0 {
			continue
		}
		nums = append(nums, num)
	}
	slices.Sort(nums)
	return nums, nil
}

// dataFileRange finds the lowest and highest numbered data files of the
// queue and the size of the highest.
func dataFileRange(dir, name string) (first, last, lastSize int64, found bool, err error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return 0, 0, 0, false, err
	}
	prefix := name + ".diskqueue."
	for _, de := range des {
		n := de.Name()
		if !strings.HasPrefix(n, prefix) || !strings.HasSuffix(n, ".dat") || strings.HasSuffix(n, ".meta.dat") {
			continue
		}
		num, perr := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(n, prefix), ".dat"), 10, 64)
		if perr != nil {
			continue
		}
		fi, ierr := de.Info()
		if ierr != nil {
			continue
		}
		if !found || num < first {
			first = num
		}
		if !found || num > last {
			last, lastSize = num, fi.Size()
		}
		found = true
	}
	return first, last, lastSize, found, nil
}

func writeFileSync(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	return nil
}
