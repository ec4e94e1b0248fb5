// Package queue is the persistent queue of one relay output. It wraps
// go-diskqueue (github.com/nsqio/go-diskqueue) and adds what the relay needs
// from it: batching, checksums, and an acknowledgement of delivery.
//
// # Batching
//
// A go-diskqueue Put costs a round trip to the queue's goroutine plus one
// write(2), which caps single-message throughput near 350k messages/s. Append
// therefore packs many entries into one record (see RecordBuilder for the
// layout) and puts the record when it holds Options.BatchMessages entries or
// Options.BatchBytes bytes, or Options.Linger after its first entry. Flush
// puts a partial record at once; a caller that must acknowledge a message to
// its sender (RELP) calls Flush first, because an entry still in the partial
// record lives only in memory.
//
// # Durability
//
// A record is durable against kill -9 once Put has returned: its bytes are in
// the page cache. Against power loss it is durable after the next sync,
// which go-diskqueue does every Options.SyncEvery records or
// Options.SyncInterval; under FsyncAlways, before the Append or Flush that
// put it returns, and its journal entry before Next returns it (fsync.go).
//
// go-diskqueue only writes; the queue reads the records from its data files
// itself (reader.go), and its read position moves past a record as soon as
// the record is read. Queue keeps its own
// in-flight journal (see journal.go) so that a record returned by Next stays
// on disk until Done, across a clean Close as well as kill -9. Records found
// in the journal at Open are returned first.
//
// The journal is truncated whenever nothing is in flight. An output worker
// that keeps batches in flight all the time, as the TCP output does while it
// waits for the upstream to confirm them, never lets that happen, so the
// journal is a sequence of segment files: appends move to a new segment
// once the current one holds 4 MiB, and an older segment is deleted when
// its last entry is done. Nothing is ever copied, and a crash at any point
// leaves segments that hold every record still in flight.
//
// go-diskqueue writes its metadata (depth, read and write positions) only
// when it syncs, and deletes it when it empties its files. Without a metadata
// file it starts empty and overwrites the old data file, which would lose
// every record written before a crash that came before the next sync; with
// stale metadata it reads the records written since the sync but does not
// count them, so its depth reads zero while they are still unread. Open
// therefore repairs the metadata before go-diskqueue starts: it counts the
// records past the recorded write position (all unread records when there is
// no metadata) and moves the writer to a new data file after them.
//
// # At least once
//
// Delivery is at least once, not exactly once. The read position is
// persisted only at a clean stop, so after a crash the reader reads again
// from the oldest data file. Every record carries a sequence number and the
// journal keeps the highest one taken (journal.go), so Next skips those
// records: after kill -9 only the records in flight (taken and not Done) are
// delivered again, from the journal. A record is delivered twice only if the
// crash falls between its journal write and the return of Next, or, after a
// power loss, when the marker of what was taken had not reached the disk.
// Never after a clean Close.
//
// # Corruption
//
// Every record carries a CRC32C. A record that fails it or does not decode is
// skipped, logged and counted (Corrupt); the queue goes on with the next
// record. A damaged length prefix is caught by go-diskqueue itself, which
// renames the rest of that data file to *.bad and moves to the next file.
//
// # A disk that refuses writes, damaged files, a removed directory
//
// A record the disk refuses stays in memory and new messages are refused
// until it is written or the output takes it from memory (diskfull.go).
// Records that damaged, cut short or removed files lost are counted in
// records and bytes (lost.go); go-diskqueue's record count, on which that
// relies, is made exact at Open (depth.go). A directory removed while the
// queue runs is created again and refilled from the files still open
// (dirgone.go).
//
// # Concurrency
//
// Append and Flush may be called from many goroutines. Next, TryNext and Done
// belong to one consumer goroutine, the output worker. Depth, DiskBytes and
// Corrupt may be called from anywhere, for example by metrics collectors.
package queue
