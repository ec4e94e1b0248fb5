package main

import (
	"net"
	"os"
)

// sdNotify tells systemd about the service's state (READY=1, RELOADING=1,
// STOPPING=1) when it runs under a unit with Type=notify; elsewhere
// NOTIFY_SOCKET is unset and it does nothing. The protocol is one datagram
// on the socket systemd names, so no library is needed.
func sdNotify(state string) {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return
	}
	if path[0] == '@' {
		path = "\x00" + path[1:] // an abstract socket
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return
	}
	defer c.Close()
	_, _ = c.Write([]byte(state))
}
