package queue

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Inspection reads a queue's files the way the queue would deliver them,
// without changing anything: files are opened read-only, and nothing is
// repaired, truncated or removed (Open does all three). It serves the
// relay queue tools, which may run beside a relay that has the queue open.
//
// Delivery order is: live entries of the in-flight journal, then the
// records of go-diskqueue's data files from its recorded read position,
// then records in data files go-diskqueue set aside as *.bad, which the
// salvage puts back at the tail.

// InspectOptions configures Inspect.
type InspectOptions struct {
	// Live says that a relay has the queue open: the end of the newest data
	// file or journal segment may be a write in progress, and a file may
	// vanish while it is read, neither of which is damage.
	Live bool
	// Entry, if set, is called with every intact message in delivery order;
	// its Data is valid only during the call. Returning false stops the
	// inspection early (Report.Stopped).
	Entry func(Entry) bool
}

// Damage is one damaged region of a queue file.
type Damage struct {
	File   string // base name of the file
	Offset int64  // where the region starts
	Bytes  int64  // its length
	// Messages is how many messages the region held, or -1 when that
	// cannot be known (a damaged length prefix hides where records start).
	Messages int
	Problem  string
}

func (d Damage) String() string {
	held := fmt.Sprintf("%d messages", d.Messages)
	switch {
	case d.Messages < 0 && d.Bytes > 0:
		held = fmt.Sprintf("%d bytes, message count unknown", d.Bytes)
	case d.Messages < 0:
		held = "message count unknown"
	}
	return fmt.Sprintf("%s at offset %d: %s (%s)", d.File, d.Offset, d.Problem, held)
}

// Report is what Inspect found in one queue.
type Report struct {
	Records  int64 // intact records waiting, the in-flight ones included
	Messages int64 // messages in them
	// Bytes is what the waiting records occupy in the queue's files, with
	// go-diskqueue's length prefixes and the journal's entry headers.
	Bytes     int64
	DataBytes int64 // the message bytes alone
	// DataFiles counts the data files (*.bad included) that hold waiting
	// records; DiskBytes is the size of all the queue's files.
	DataFiles int
	DiskBytes int64
	// InFlightRecords and InFlightMessages are the live journal entries:
	// taken by the output and not yet confirmed, delivered first.
	InFlightRecords, InFlightMessages int64
	// Oldest and Newest are the earliest and latest receive times of the
	// waiting messages (zero when none has one).
	Oldest, Newest time.Time
	Damage         []Damage
	// Notes explain figures that are not damage: a torn write at the end
	// of the newest file, missing metadata.
	Notes []string
	// Stopped is set when InspectOptions.Entry ended the inspection early;
	// the counts then cover only what was read.
	Stopped bool
}

// DamagedMessages sums the messages of the damaged regions whose count is
// known; unknown reports whether some region's count is not.
func (r *Report) DamagedMessages() (n int, unknown bool) {
	for _, d := range r.Damage {
		if d.Messages < 0 {
			unknown = true
		} else {
			n += d.Messages
		}
	}
	return n, unknown
}

// errStopInspect ends an inspection that its Entry callback stopped.
var errStopInspect = errors.New("inspection stopped")

type inspector struct {
	dir, name string
	opts      InspectOptions
	r         *Report
	hasBad    bool // the directory holds data files set aside as *.bad
	// uncounted is set once a damaged region hid how many records it held.
	uncounted bool
	// taken is the highest record sequence number taken, from the marker
	// and the journal's entries; the data files' records up to it are not
	// counted, as Open skips them whatever the metadata holds: read from
	// the oldest data file (no read position, or none readable), or from
	// a read position a clean stop saved in front of records taken before
	// a crash.
	taken uint64
}

// Inspect reads the queue named name in dir without changing it. An error
// means the files could not be read at all; damage is reported in the
// Report.
func Inspect(dir, name string, opts InspectOptions) (*Report, error) {
	if err := CheckName(name); err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	if err := checkRegularFiles(dir, name); err != nil {
		return nil, fmt.Errorf("queue %q: %w", name, err)
	}
	in := &inspector{dir: dir, name: name, opts: opts, r: &Report{}}
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("queue %q: %w", name, err)
	}
	for _, de := range des {
		if fi, err := de.Info(); err == nil && fi.Mode().IsRegular() && in.ownFile(de.Name()) {
			in.r.DiskBytes += fi.Size()
		}
	}
	for _, de := range des {
		if n := de.Name(); strings.HasPrefix(n, name+".diskqueue.") && strings.HasSuffix(n, ".dat.bad") {
			// A salvage left undone: go-diskqueue's count and the files
			// then disagree without anything being lost.
			in.hasBad = true
		}
	}
	err = in.journal(des)
	if err == nil {
		err = in.dataFiles()
	}
	if err == nil {
		err = in.badFiles(des)
	}
	if errors.Is(err, errStopInspect) {
		in.r.Stopped = true
		err = nil
	}
	if err != nil {
		return nil, fmt.Errorf("queue %q: %w", name, err)
	}
	return in.r, nil
}

// ownFile reports whether a file name in the queue directory belongs to
// the queue.
func (in *inspector) ownFile(name string) bool {
	return strings.HasPrefix(name, in.name+".diskqueue.") || strings.HasPrefix(name, journalName) || name == takenName
}

// journal reads the live entries of every journal segment, oldest first.
// The entry layout is journal.go's; openSegment reads it the same way but
// cuts off what it cannot read, which an inspection must not do.
func (in *inspector) journal(des []fs.DirEntry) error {
	var seqs []uint64
	for _, de := range des {
		if seq, ok := segmentSeq(de.Name()); ok && de.Type().IsRegular() {
			seqs = append(seqs, seq)
		}
	}
	slices.Sort(seqs)
	for i, seq := range seqs {
		file := segmentName(seq)
		data, err := os.ReadFile(filepath.Join(in.dir, file))
		if errors.Is(err, fs.ErrNotExist) && in.opts.Live {
			continue // deleted by the relay once its entries were done
		}
		if err != nil {
			return fmt.Errorf("read journal: %w", err)
		}
		var off int64
		for off < int64(len(data)) {
			rest := data[off:]
			if isEndMark(rest) {
				off = int64(len(data)) // a reused segment's older content follows
				break
			}
			if len(rest) < journalHeaderLen {
				break
			}
			word := binary.BigEndian.Uint32(rest)
			size := int64(word &^ doneFlag)
			if size == 0 || size > maxRecordLen || size > int64(len(rest)-journalHeaderLen) {
				break
			}
			rec := rest[journalHeaderLen : journalHeaderLen+size]
			if !journalSumMatches(rec, binary.BigEndian.Uint32(rest[4:])) {
				break
			}
			in.taken = max(in.taken, RecordSeq(rec))
			if word&doneFlag == 0 {
				if err := in.record(file, off, rec, journalHeaderLen, true); err != nil {
					return err
				}
			}
			off += journalHeaderLen + size
		}
		if off == int64(len(data)) {
			continue
		}
		// An append in progress ends the newest segment while a relay runs.
		if in.opts.Live && i == len(seqs)-1 {
			continue
		}
		in.r.Damage = append(in.r.Damage, Damage{File: file, Offset: off, Bytes: int64(len(data)) - off, Messages: -1,
			Problem: "torn or corrupt in-flight journal entry (the relay ignores the rest of the segment)"})
	}
	return nil
}

// dataFiles reads go-diskqueue's data files from the recorded read
// position to the newest file.
func (in *inspector) dataFiles() error {
	nums, err := dataFileNums(in.dir, in.name)
	if err != nil {
		return err
	}
	found := len(nums) > 0
	in.taken = max(in.taken, readTakenMarker(in.dir))
	b, err := os.ReadFile(metaPath(in.dir, in.name))
	m, perr := parseMeta(b)
	metaOK := err == nil && perr == nil
	switch {
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("read metadata: %w", err)
	case err == nil && errors.Is(perr, errNoReadPos):
		// A relay running, or one that did not stop cleanly: Open reads
		// from the first data file, skipping what was taken before.
	case err == nil && perr != nil:
		// Open sets such a file aside and counts from the first data
		// file (repairMetadata): records already delivered may be sent
		// again, none is lost.
		in.r.Damage = append(in.r.Damage, Damage{File: filepath.Base(metaPath(in.dir, in.name)), Messages: 0,
			Problem: fmt.Sprintf("damaged metadata (%s; the relay sets it aside at its next start and counts every record in the data files as waiting)", strings.TrimPrefix(perr.Error(), "parse metadata: "))})
	}
	if metaOK && !chained(m, nums) {
		// Open takes these for damaged too (repairMetadata).
		metaOK = false
		in.r.Damage = append(in.r.Damage, Damage{File: filepath.Base(metaPath(in.dir, in.name)), Messages: 0,
			Problem: fmt.Sprintf("damaged metadata (read position in file %d, write position in file %d, more than %d numbers without a data file between; the relay sets it aside at its next start and counts every record in the data files as waiting)", m.readNum, m.writeNum, maxFileGap)})
	}
	if !metaOK && found {
		what := "no metadata file"
		switch {
		case errors.Is(perr, errNoReadPos):
			what = "no read position in the metadata (the relay is running or did not stop cleanly)"
		case err == nil:
			what = "an unreadable metadata file"
		}
		note := fmt.Sprintf("%s: the records in the data files not yet taken by the output are counted as waiting, as the relay will at its next start", what)
		in.r.Notes = append(in.r.Notes, note)
		m = dqMeta{readNum: nums[0], writeNum: nums[0]}
	}
	if !found {
		return nil
	}
	last := nums[len(nums)-1]
	var records int64 // records found in the data files, damaged ones included
	prev := int64(-1) // the last file found, once one is
	for _, num := range nums {
		if num < m.readNum {
			continue
		}
		pos := int64(0)
		if num == m.readNum {
			pos = m.readPos
		}
		file := filepath.Base(dataPath(in.dir, in.name, num))
		// Only the newest file can end in a write in progress (a relay
		// running, or killed during a write that therefore never
		// completed), and at rest only past the position the metadata
		// records as written.
		tornOK, tornFrom := num == last, int64(0)
		if metaOK && !in.opts.Live {
			switch {
			case num == m.writeNum:
				tornFrom = m.writePos
			case num < m.writeNum:
				tornOK = false
			}
		}
		// Files before the first one found were read and deleted before
		// the metadata was last written: nothing is missing there. A gap
		// is one region however many numbers it spans.
		if prev >= 0 && num > prev+1 && !in.opts.Live {
			d := Damage{File: filepath.Base(dataPath(in.dir, in.name, prev+1)), Messages: -1, Problem: "data file missing between others"}
			if num > prev+2 {
				d.Problem = fmt.Sprintf("%d data files missing between others, numbers %d to %d", num-prev-1, prev+1, num-1)
			}
			in.r.Damage = append(in.r.Damage, d)
		}
		prev = num
		n, _, err := in.dataFile(file, pos, tornOK, tornFrom)
		if err != nil {
			return err
		}
		records += n
	}
	// After a clean stop the metadata counts exactly the records waiting;
	// after a crash it counts fewer (it was written before the last reads
	// and writes), never more. More means records are gone.
	if metaOK && !in.opts.Live && !in.r.Stopped && !in.hasBad && !in.uncounted && m.depth > records {
		in.r.Notes = append(in.r.Notes, fmt.Sprintf("go-diskqueue's metadata counts %d records waiting, the data files hold %d: %d records are missing (a file cut short or removed)",
			m.depth, records, m.depth-records))
		in.r.Damage = append(in.r.Damage, Damage{File: filepath.Base(metaPath(in.dir, in.name)), Messages: -1,
			Problem: fmt.Sprintf("%d records counted in the metadata are not in the data files", m.depth-records)})
	}
	return nil
}

// badFiles reads the data files go-diskqueue set aside, from the position
// the queue recorded for their salvage (from the start without one, as the
// salvage does).
func (in *inspector) badFiles(des []fs.DirEntry) error {
	prefix := in.name + ".diskqueue."
	for _, de := range des {
		name := de.Name()
		if !strings.HasPrefix(name, prefix) || !strings.HasSuffix(name, ".dat.bad") {
			continue
		}
		var pos int64
		if b, err := os.ReadFile(filepath.Join(in.dir, name+".pos")); err == nil {
			if pos, err = parseSalvagePos(b); err != nil {
				in.r.Damage = append(in.r.Damage, Damage{File: name + ".pos", Messages: 0,
					Problem: fmt.Sprintf("damaged salvage position (%v; the relay salvages the file from its start, which may send records again)", err)})
			}
		}
		if _, _, err := in.dataFile(name, pos, false, 0); err != nil {
			return err
		}
	}
	return nil
}

// dataFile reads the records of one data file from pos. A record cut short
// at the end of the file from tornFrom on is a write in progress (or one a
// crash interrupted) if tornOK, and damage otherwise. It returns the number
// of records found, damaged ones included.
func (in *inspector) dataFile(file string, pos int64, tornOK bool, tornFrom int64) (records int64, exists bool, err error) {
	f, err := os.Open(filepath.Join(in.dir, file))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, true, err
	}
	size := fi.Size()
	holds := false
	defer func() {
		if holds {
			in.r.DataFiles++
		}
	}()
	var hdr [4]byte
	var rec []byte
	for pos < size {
		if size-pos < 4 {
			in.cutShort(file, pos, size, nil, tornOK && pos >= tornFrom)
			break
		}
		if _, err := f.ReadAt(hdr[:], pos); err != nil {
			return records, true, fmt.Errorf("read %s: %w", file, err)
		}
		l := int64(binary.BigEndian.Uint32(hdr[:]))
		// In a file that is not the newest, a length running past its end
		// fails go-diskqueue's read as an absurd one does, and the
		// salvage goes on after it: unless intact records follow, the
		// file was cut short there.
		pastEnd := l >= dqMinMsgSize && l <= maxRecordLen && pos+4+l > size && !tornOK
		if l < dqMinMsgSize || l > maxRecordLen || pastEnd {
			next, err := resync(f, pos+1, size)
			if err != nil {
				return records, true, fmt.Errorf("read %s: %w", file, err)
			}
			if !pastEnd || next < size {
				in.uncounted = true
				what := "bad record length %d"
				if pastEnd {
					what = "record length %d runs past the end of the file"
				}
				in.r.Damage = append(in.r.Damage, Damage{File: file, Offset: pos, Bytes: next - pos, Messages: -1,
					Problem: fmt.Sprintf(what+" (go-diskqueue stops reading the file here; the relay salvages the records after it)", l)})
				pos = next
				continue
			}
		}
		if pos+4+l > size {
			partial := make([]byte, size-pos-4)
			if _, err := f.ReadAt(partial, pos+4); err != nil && err != io.EOF {
				return records, true, fmt.Errorf("read %s: %w", file, err)
			}
			if !(tornOK && pos >= tornFrom) {
				records++
			}
			in.cutShort(file, pos, size, partial, tornOK && pos >= tornFrom)
			break
		}
		if int64(cap(rec)) < l {
			rec = make([]byte, l)
		}
		rec = rec[:l]
		if _, err := f.ReadAt(rec, pos+4); err != nil {
			return records, true, fmt.Errorf("read %s: %w", file, err)
		}
		if seq := RecordSeq(rec); seq != 0 && seq <= in.taken {
			pos += 4 + l
			continue
		}
		records++
		holds = true
		if err := in.record(file, pos, rec, 4, false); err != nil {
			return records, true, err
		}
		pos += 4 + l
	}
	return records, true, nil
}

// cutShort notes a file that ends inside a record: a write in progress or
// interrupted (torn), or damage. partial is what the file holds of the
// record after its length prefix (nil when the prefix itself is cut).
func (in *inspector) cutShort(file string, pos, size int64, partial []byte, torn bool) {
	if torn {
		if !in.opts.Live {
			in.r.Notes = append(in.r.Notes, fmt.Sprintf("%s ends at offset %d inside a record whose write never completed (a stop during a write); it held no accepted message and the relay cuts it off at its next start", file, pos))
		}
		return
	}
	msgs := -1
	if len(partial) >= 6 {
		// The entry count stands right after the version and checksum
		// (and, from version 3, the record sequence number); a count from
		// a record cut short cannot be checked, but nothing better is
		// left.
		p := partial[5:]
		if partial[0] >= 3 {
			if _, n := binary.Uvarint(p); n > 0 {
				p = p[n:]
			} else {
				p = nil
			}
		}
		if c, n := binary.Uvarint(p); n > 0 && c > 0 && c <= maxRecordLen/minEntryLen {
			msgs = int(c)
		}
	}
	in.r.Damage = append(in.r.Damage, Damage{File: file, Offset: pos, Bytes: size - pos, Messages: msgs,
		Problem: "file ends inside a record (cut short)"})
}

// record accounts one record found at off in file; hdr is the bytes in
// front of it in the file.
func (in *inspector) record(file string, off int64, rec []byte, hdr int64, journal bool) error {
	entries, err := DecodeRecord(rec)
	if err != nil {
		where := "record"
		if journal {
			where = "in-flight journal record"
		}
		in.r.Damage = append(in.r.Damage, Damage{File: file, Offset: off, Bytes: hdr + int64(len(rec)), Messages: damagedCount(rec),
			Problem: fmt.Sprintf("%s fails its check (%s; the relay skips it)", where, corruptReason(err))})
		return nil
	}
	r := in.r
	r.Records++
	r.Messages += int64(len(entries))
	r.Bytes += hdr + int64(len(rec))
	if journal {
		r.InFlightRecords++
		r.InFlightMessages += int64(len(entries))
	}
	for _, e := range entries {
		r.DataBytes += int64(len(e.Data))
		if !e.Received.IsZero() {
			if r.Oldest.IsZero() || e.Received.Before(r.Oldest) {
				r.Oldest = e.Received
			}
			if e.Received.After(r.Newest) {
				r.Newest = e.Received
			}
		}
		if in.opts.Entry != nil && !in.opts.Entry(e) {
			return errStopInspect
		}
	}
	return nil
}

// corruptReason is DecodeRecord's error without what every one of them
// says.
func corruptReason(err error) string {
	return strings.TrimSuffix(strings.TrimPrefix(err.Error(), "decode record: "), ": "+ErrCorruptRecord.Error())
}

// damagedCount returns the number of messages a record that failed its
// check held, if the rest of it is still consistent: the checksum is
// recomputed over a copy and the copy decoded. A record damaged in its
// data (the common case: a flipped bit in a message) decodes; one damaged
// in its structure does not, and its count is unknown (-1).
func damagedCount(rec []byte) int {
	if len(rec) < 5 {
		return -1
	}
	fixed := bytes.Clone(rec)
	binary.BigEndian.PutUint32(fixed[1:5], crc32.Checksum(fixed[5:], castagnoli))
	entries, err := DecodeRecord(fixed)
	if err != nil {
		return -1
	}
	return len(entries)
}

// resync finds the next offset from pos on where a whole record that
// passes its check starts, as the salvage does, or size if there is none.
func resync(f *os.File, pos, size int64) (int64, error) {
	next, _, err := newRecordScanner(f, size).next(pos)
	return next, err
}

// PurgeResult says what Purge removed.
type PurgeResult struct {
	Files int
	Bytes int64
}

// Purge discards the queue named name in dir: its metadata, data files
// (set-aside ones too) and in-flight journal with its marker of what was
// taken (with no record left, nothing needs skipping). The directory stays. The
// caller must make sure no relay has the queue open (the data-dir lock).
// The metadata goes first, so a purge interrupted half-way leaves data
// files that the next Open counts from the first, never metadata that
// points at files no longer there.
func Purge(dir, name string) (PurgeResult, error) {
	if err := CheckName(name); err != nil {
		return PurgeResult{}, fmt.Errorf("queue: %w", err)
	}
	des, err := os.ReadDir(dir)
	if err != nil {
		return PurgeResult{}, fmt.Errorf("queue %q: %w", name, err)
	}
	meta := filepath.Base(metaPath(dir, name))
	var files []string
	for _, de := range des {
		n := de.Name()
		if de.Type().IsRegular() && (strings.HasPrefix(n, name+".diskqueue.") || strings.HasPrefix(n, journalName) || n == takenName) {
			files = append(files, n)
		}
	}
	// The metadata file (and its temporary copies) first.
	slices.SortStableFunc(files, func(a, b string) int {
		am, bm := strings.HasPrefix(a, meta), strings.HasPrefix(b, meta)
		switch {
		case am && !bm:
			return -1
		case bm && !am:
			return 1
		}
		return 0
	})
	var res PurgeResult
	for _, n := range files {
		path := filepath.Join(dir, n)
		fi, err := os.Stat(path)
		if err != nil {
			continue
		}
		if err := os.Remove(path); err != nil {
			return res, fmt.Errorf("queue %q: purge: %w", name, err)
		}
		res.Files++
		res.Bytes += fi.Size()
	}
	if err := syncDir(dir); err != nil {
		return res, fmt.Errorf("queue %q: purge: %w", name, err)
	}
	return res, nil
}
