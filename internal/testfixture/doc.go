// Package testfixture holds what the tests and benchmarks of several
// packages share about the relay's own parts: a typical queue entry, a
// queue filled with sequence-numbered messages, and metric values read
// from a Prometheus registry. It is imported only by _test.go files.
//
// The queue package's own tests cannot import it (it imports queue); they
// live in package queue_test where they need it.
package testfixture
