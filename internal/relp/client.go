package relp

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// MaxResponseLen is the longest rsp data a Client reads without truncating;
// the largest answer, the offers of open, is a few hundred bytes.
const MaxResponseLen = 64 << 10

// ErrServerclose means the server sent the serverclose hint: it is closing
// the connection, and commands not answered yet never will be.
var ErrServerclose = errors.New("relp: server closed the session (serverclose)")

// Client is the sending side of one RELP session on a connection. Its
// writing half (Open, Syslog, SendClose, Flush, Buffered) and its reading
// half (Receive) may be used by two goroutines, one each; neither half is
// safe for concurrent use by itself. Open must complete before Receive is
// called.
type Client struct {
	rd   *Reader
	w    *bufio.Writer
	last int // TXNR of the last command written
	hdr  []byte
}

// NewClient returns a Client that writes commands to w through a buffer of
// bufSize bytes (64 KiB when bufSize < 1) and reads answers from r.
func NewClient(r io.Reader, w io.Writer, bufSize int) *Client {
	if bufSize < 1 {
		bufSize = 64 << 10
	}
	return &Client{
		rd:  NewReader(r, MaxResponseLen),
		w:   bufio.NewWriterSize(w, bufSize),
		hdr: make([]byte, 0, HeaderAllowance),
	}
}

// NextTxnr returns the TXNR the next command will carry.
func (c *Client) NextTxnr() int { return NextTxnr(c.last) }

// Open sends open with ClientOffers, waits for its answer and checks that
// the server accepts the session. It returns the server's offers.
func (c *Client) Open() ([]Offer, error) {
	txnr, err := c.command(CmdOpen, AppendOffers(nil, ClientOffers()))
	if err != nil {
		return nil, err
	}
	if err := c.w.Flush(); err != nil {
		return nil, err
	}
	for {
		f, err := c.rd.Next()
		if err != nil {
			return nil, fmt.Errorf("relp: waiting for the answer to open: %w", err)
		}
		switch {
		case f.Txnr == 0 && f.Command == CmdServerclose:
			return nil, ErrServerclose
		case f.Txnr == 0:
			continue // other hints are advisory
		case f.Command != CmdRsp || f.Txnr != txnr:
			return nil, fmt.Errorf("relp: got %q with TXNR %d while waiting for the answer to open (TXNR %d)", f.Command, f.Txnr, txnr)
		}
		rsp, err := ParseResponse(f.Data)
		if err != nil {
			return nil, err
		}
		if !rsp.OK() {
			return nil, fmt.Errorf("relp: server refused open: %d %s", rsp.Code, rsp.Text)
		}
		offers, err := ParseOffers(rsp.Data)
		if err != nil {
			return nil, err
		}
		if err := CheckOpenAnswer(offers); err != nil {
			return nil, err
		}
		return offers, nil
	}
}

// Syslog buffers a syslog command carrying msg and returns its TXNR. The
// buffer is written out when full; Flush writes the rest.
func (c *Client) Syslog(msg []byte) (int, error) {
	return c.command(CmdSyslog, msg)
}

// SendClose writes a close command, flushing everything buffered, and
// returns its TXNR. No command may follow it.
func (c *Client) SendClose() (int, error) {
	txnr, err := c.command(CmdClose, nil)
	if err != nil {
		return txnr, err
	}
	return txnr, c.w.Flush()
}

// Flush writes every buffered command to the connection.
func (c *Client) Flush() error { return c.w.Flush() }

// Buffered returns how many bytes of commands are buffered, not yet written.
func (c *Client) Buffered() int { return c.w.Buffered() }

// command writes one frame into the buffer without copying data twice.
func (c *Client) command(cmd string, data []byte) (int, error) {
	if len(data) > MaxDataLen {
		return 0, fmt.Errorf("relp: %s of %d bytes exceeds the protocol limit of %d", cmd, len(data), MaxDataLen)
	}
	txnr := NextTxnr(c.last)
	h := strconv.AppendInt(c.hdr[:0], int64(txnr), 10)
	h = append(h, ' ')
	h = append(h, cmd...)
	h = append(h, ' ')
	h = strconv.AppendInt(h, int64(len(data)), 10)
	if len(data) > 0 {
		h = append(h, ' ')
	}
	c.hdr = h
	c.w.Write(h)
	c.w.Write(data)
	if err := c.w.WriteByte('\n'); err != nil {
		// bufio.Writer keeps its first error: any failed write shows here.
		return 0, err
	}
	c.last = txnr
	return txnr, nil
}

// Receive returns the next frame from the server: an rsp, or a hint such
// as serverclose. Its Data is valid until the next Receive.
func (c *Client) Receive() (Frame, error) { return c.rd.Next() }
