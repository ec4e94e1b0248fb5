package queue

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// This file knows go-diskqueue's (v1.1.0) files: the data files
// <name>.diskqueue.NNNNNN.dat and the metadata file
// <name>.diskqueue.meta.dat. The queue reads the metadata to size its
// backlog at Open, and writes it where go-diskqueue would otherwise start
// over and overwrite data (see seedMetadata).

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

// parseMeta parses the content of a metadata file as go-diskqueue does.
func parseMeta(b []byte) (dqMeta, error) {
	var m dqMeta
	if _, err := fmt.Sscanf(string(b), metaFormat, &m.depth, &m.readNum, &m.readPos, &m.writeNum, &m.writePos); err != nil {
		return dqMeta{}, fmt.Errorf("parse metadata: %w", err)
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

// seedMetadata writes the metadata of an empty queue unless the queue
// already has one. Without a metadata file go-diskqueue starts from position
// zero and overwrites data written before a crash that came before its first
// sync; with one, it finds the data file longer than recorded and reads it.
func seedMetadata(dir, name string) error {
	meta := metaPath(dir, name)
	b, err := os.ReadFile(meta)
	switch {
	case err == nil:
		if _, perr := parseMeta(b); perr == nil {
			return nil
		}
		// go-diskqueue would start over at file 0 on a metadata file it
		// cannot read and overwrite the data there: keep the damaged file
		// for inspection and describe the data files instead.
		if err := os.Rename(meta, meta+".corrupt"); err != nil {
			return fmt.Errorf("set damaged metadata aside: %w", err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("read metadata: %w", err)
	}
	// No metadata: a new queue, or one whose metadata was lost —
	// go-diskqueue's Empty deletes it, and a crash before its next sync
	// leaves none. Point the reader at the oldest data file and the writer
	// past the end of the newest, so that every record on disk is read.
	first, last, lastSize, found, err := dataFileRange(dir, name)
	if err != nil {
		return err
	}
	if !found {
		// An empty first data file keeps go-diskqueue from logging an
		// error about a missing file when the queue is reopened before any
		// write.
		data, err := os.OpenFile(dataPath(dir, name, 0), os.O_WRONLY|os.O_CREATE, 0o600)
		if err != nil {
			return fmt.Errorf("create data file: %w", err)
		}
		if err := data.Close(); err != nil {
			return fmt.Errorf("create data file: %w", err)
		}
	}
	tmp := meta + ".seed.tmp"
	// The depth is unknown here; go-diskqueue corrects it when its reader
	// reaches the end.
	seed := dqMeta{readNum: first, writeNum: last, writePos: lastSize}
	if err := writeFileSync(tmp, seed.format()); err != nil {
		return fmt.Errorf("write metadata: %w", err)
	}
	if err := os.Rename(tmp, meta); err != nil {
		return fmt.Errorf("write metadata: %w", err)
	}
	return syncDir(dir)
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
