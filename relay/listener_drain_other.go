//go:build !linux

package relay

import (
	"net"
	"time"
)

// acceptQueueLen reports an empty backlog where the kernel does not tell
// its length: the listener then stops accepting at once, and connections
// still waiting in it are reset.
func acceptQueueLen(net.Listener) (int, error) { return 0, nil }

// connQuiet treats every connection as quiet where the kernel does not tell
// what waits on it: the connection then reads what its socket holds at
// once and ends.
func connQuiet(net.Conn, time.Duration) bool { return true }
