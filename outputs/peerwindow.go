package outputs

// peerWindow is the receive window the peer advertises.
type peerWindow struct {
	size int64 // tcpi_snd_wnd; 0 when the kernel does not report it
	// closed is set when it keeps us from sending: the peer advertises no
	// room, or, with data waiting to go out, less than one segment's room
	// beyond what is in flight (the sender then waits for the peer to
	// read, sending only window probes).
	closed bool
}
