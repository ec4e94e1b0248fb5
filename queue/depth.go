package queue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// go-diskqueue's depth (records waiting) comes from its metadata, which is
// only as fresh as its last sync: after a crash, after a stop on a full disk
// (the sync at Close fails), and for metadata that Open seeded, it counts
// fewer records than the files hold. The queue's reader (reader.go) takes
// its count of records not read from it, and the loss count (lost.go) and
// Depth rely on that count.
//
// So Open counts the records in the data files itself, from the read
// position on, and writes the count into the metadata when it is higher. A
// record cut short at the end of the newest file, past the position the
// metadata records as written, is a write that never completed (a full
// disk, or the process killed during write(2)): its Put did not succeed, so
// it holds nothing accepted as written, and it is cut off rather than left
// for the reader to stumble on as damage.

// countRecords raises the depth in the queue's metadata to the number of
// records in its data files. It returns the highest record sequence number
// among them.
func countRecords(dir, name string) (maxSeq uint64, err error) {
	meta := metaPath(dir, name)
	b, err := os.ReadFile(meta)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	m, err := parseMeta(b)
	if err != nil {
		return 0, nil // repairMetadata, which runs first, sets unreadable metadata aside
	}
	nums, err := dataFileNums(dir, name)
	if err != nil || len(nums) == 0 {
		return 0, err
	}
	last := nums[len(nums)-1]
	var n int64
	for _, num := range nums {
		if num < m.readNum {
			continue
		}
		from := int64(0)
		if num == m.readNum {
			from = m.readPos
		}
		var cutAt int64 = -1 // only the newest file ends in a write in progress
		switch {
		case num == last && num == m.writeNum:
			cutAt = m.writePos
		case num == last && num > m.writeNum:
			cutAt = 0
		}
		c, fileMax, err := countFileRecords(dataPath(dir, name, num), from, cutAt)
		if err != nil {
			return 0, err
		}
		n += c
		maxSeq = max(maxSeq, fileMax)
	}
	// The files hold at least the records the metadata counts unless some
	// were damaged or cut short; those the depth must keep counting, so
	// that go-diskqueue reports them missing at its tail (lost.go).
	if n <= m.depth {
		return maxSeq, nil
	}
	m.depth = n
	tmp := meta + ".depth.tmp"
	err = writeFileSync(tmp, m.format())
	if err == nil {
		err = os.Rename(tmp, meta)
	}
	if err == nil {
		return maxSeq, nil
	}
	_ = os.Remove(tmp)
	// On a full disk the new file cannot be written; the old one's block
	// is allocated, and the few bytes fit in it.
	if ierr := overwriteInPlace(meta, m.format()); ierr != nil {
		return 0, fmt.Errorf("write metadata: %w", errors.Join(err, ierr))
	}
	return maxSeq, nil
}

// overwriteInPlace writes content over the start of the existing file path,
// cuts it to that length and syncs it.
func overwriteInPlace(path string, content []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, werr := f.WriteAt(content, 0)
	terr := f.Truncate(int64(len(content)))
	serr := f.Sync()
	cerr := f.Close()
	return errors.Join(werr, terr, serr, cerr)
}

// countFileRecords counts the complete records of a data file from offset
// from, stopping at the first length prefix go-diskqueue would refuse, and
// returns the highest record sequence number among them. A record cut short
// at the end of the file, at or after offset cutAt (when not negative), is
// truncated away. A missing file has none.
func countFileRecords(path string, from, cutAt int64) (n int64, maxSeq uint64, err error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, 0, err
	}
	size := fi.Size()
	// The length prefix and the record's header up to its sequence number.
	var hdr [4 + 1 + 4 + binary.MaxVarintLen64]byte
	pos := from
	for pos < size {
		got, err := f.ReadAt(hdr[:], pos)
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, 0, err
		}
		if got < 4 {
			break // a partial length prefix
		}
		l := int64(binary.BigEndian.Uint32(hdr[:]))
		if l < 1 || l > maxRecordLen {
			return n, maxSeq, nil // damage: go-diskqueue stops here, the salvage goes on
		}
		if pos+4+l > size {
			break
		}
		n++
		maxSeq = max(maxSeq, RecordSeq(hdr[4:min(got, 4+int(l))]))
		pos += 4 + l
	}
	if pos < size && cutAt >= 0 && pos >= cutAt {
		if err := f.Truncate(pos); err != nil {
			return 0, 0, err
		}
	}
	return n, maxSeq, nil
}
