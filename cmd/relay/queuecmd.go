package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	relayroot "github.com/relay-syslog/relay"
	"github.com/relay-syslog/relay/outputs"
	"github.com/relay-syslog/relay/queue"
	"github.com/relay-syslog/relay/relay"
)

// queueUsage is printed, with the flags, by relay queue -h.
const queueUsage = `Usage: relay queue COMMAND [flags]

Look into the disk queues of a relay's outputs, or discard one.

Commands:
  stat     per output: messages and bytes waiting, files, records in flight,
           oldest and newest receive time
  verify   read every record and check every checksum; report damaged
           regions (file, offset, messages or bytes). Exit status 0: sound,
           1: damaged (or unreadable)
  dump     print the waiting messages in delivery order, one per line,
           control bytes written as #ooo as a file output writes them
           (-json: one JSON object per message with receive time, listener,
           sender and the message's bytes); -n, -since and -until select
  purge    discard one output's backlog (-output is required); asks first
           unless -yes; refused while a relay runs on the data dir

The queues are those of -config's data_dir and outputs (without -config and
-data-dir: the built-in configuration's), or every queue directory found in
-data-dir. stat, verify and dump only read: beside a running relay (it holds
the data dir's lock) they read a snapshot of files that change as they read.

Examples:
  relay queue stat -config /etc/relay/relay.toml
  relay queue verify -data-dir /var/lib/relay -output head
  relay queue dump -config relay.toml -output head -json -since 2h -n 100
  relay queue purge -config relay.toml -output archive

relay queue COMMAND -h describes one command and its flags.

Flags:
`

// queueCommandUsages are printed, with the command's own flags, by relay
// queue COMMAND -h.
var queueCommandUsages = map[string]string{
	"stat": `Usage: relay queue stat [flags]

Per output: messages and bytes waiting, files, records in flight, oldest and
newest receive time. Beside a running relay it reads a snapshot of files
that change as it reads.

Examples:
  relay queue stat -config /etc/relay/relay.toml
  relay queue stat -data-dir /var/lib/relay -output head

Flags:
`,
	"verify": `Usage: relay queue verify [flags]

Read every record and check every checksum; report damaged regions (file,
offset, messages or bytes). Exit status 0: sound, 1: damaged (or
unreadable).

Examples:
  relay queue verify -config /etc/relay/relay.toml
  relay queue verify -data-dir /var/lib/relay -output head

Flags:
`,
	"dump": `Usage: relay queue dump [flags]

Print the waiting messages in delivery order, one per line as received,
control bytes written as #ooo as a file output writes them (-json: one
JSON object per message with receive time, listener, sender and the
message's bytes). -n, -since and -until select; -since must be before
-until.

Examples:
  relay queue dump -config relay.toml -output head -json -since 2h -n 100
  relay queue dump -config relay.toml -since 2026-01-02T15:00:00Z -until 2026-01-02T16:00:00Z

Flags:
`,
	"purge": `Usage: relay queue purge -output NAME [flags]

Discard one output's backlog. Asks first unless -yes; refused while a relay
runs on the data dir.

Example:
  relay queue purge -config relay.toml -output archive

Flags:
`,
}

// queueOptions are the flags of the relay queue commands.
type queueOptions struct {
	configPath, dataDir, output string
	// dump
	asJSON       bool
	limit        int
	since, until string
	// purge
	yes bool
}

func runQueue(args []string, stdout, stderr io.Writer) int {
	return queueCommand(args, os.Stdin, stdout, stderr)
}

// queueCommand is relay queue with standard input given, for purge's
// question.
func queueCommand(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "relay queue: which command? stat, verify, dump or purge (relay queue -h)")
		return 2
	}
	if args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		fs, _ := queueFlags("")
		printQueueUsage(fs, stdout)
		return 0
	}
	cmd := args[0]
	if !slices.Contains([]string{"stat", "verify", "dump", "purge"}, cmd) {
		fmt.Fprintf(stderr, "relay queue: unknown command %q: use stat, verify, dump or purge (relay queue -h)\n", cmd)
		return 2
	}
	fs, o := queueFlags(cmd)
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsageText(queueCommandUsages[cmd], fs, stdout)
			return 0
		}
		fmt.Fprintf(stderr, "relay queue %s: %v (relay queue %s -h lists the flags)\n", cmd, err, cmd)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "relay queue %s: unexpected argument %q\n", cmd, fs.Arg(0))
		return 2
	}
	if o.configPath != "" && o.dataDir != "" {
		fmt.Fprintf(stderr, "relay queue %s: give -config or -data-dir, not both\n", cmd)
		return 2
	}
	if cmd == "purge" && o.output == "" {
		fmt.Fprintln(stderr, "relay queue purge: -output is required: purge discards one output's backlog")
		return 2
	}
	var since, until time.Time
	if cmd == "dump" {
		var err error
		if since, until, err = dumpSelection(o, time.Now()); err != nil {
			fmt.Fprintf(stderr, "relay queue dump: %v\n", err)
			return 2
		}
	}
	dataDir, queues, err := findQueues(o)
	if err != nil {
		fmt.Fprintf(stderr, "relay queue %s: %v\n", cmd, err)
		if errors.As(err, new(*usageError)) {
			return 2
		}
		return 1
	}
	if fi, err := os.Stat(dataDir); err != nil || !fi.IsDir() {
		fmt.Fprintf(stderr, "relay queue %s: data_dir %s: no such directory (the relay creates it at its first start)\n", cmd, dataDir)
		return 1
	}
	if len(queues) == 0 {
		fmt.Fprintf(stdout, "data_dir %s holds no queue\n", dataDir)
		return 0
	}
	switch cmd {
	case "purge":
		return queuePurge(dataDir, queues[0], o, stdin, stdout, stderr)
	case "dump":
		return queueDump(dataDir, queues, o, since, until, stdout, stderr)
	}
	live, note := dataDirState(dataDir)
	fmt.Fprintln(stdout, note)
	if cmd == "verify" {
		return queueVerify(queues, live, stdout, stderr)
	}
	return queueStat(queues, live, stdout, stderr)
}

func queueFlags(cmd string) (*flag.FlagSet, *queueOptions) {
	name := "relay queue"
	if cmd != "" {
		name += " " + cmd
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	o := &queueOptions{}
	fs.StringVar(&o.configPath, "config", "", "configuration file whose data_dir and outputs to use; without it and -data-dir, the built-in configuration")
	fs.StringVar(&o.dataDir, "data-dir", "", "data dir to use instead of a configuration's: every queue directory in it")
	outputUsage := "only the queue of this output (purge: required)"
	switch cmd {
	case "purge":
		outputUsage = "the output whose backlog to discard (required)"
	case "stat", "verify", "dump":
		outputUsage = "only the queue of this output"
	}
	fs.StringVar(&o.output, "output", "", outputUsage)
	if cmd == "" || cmd == "dump" {
		fs.BoolVar(&o.asJSON, "json", false, "dump: one JSON object per message (received, listener, sender, epoch, seq, message or message_base64, output)")
		fs.IntVar(&o.limit, "n", 0, "dump: at most this many messages (0: all)")
		fs.StringVar(&o.since, "since", "", "dump: only messages received at or after this time (RFC 3339, or a duration ago: 2h)")
		fs.StringVar(&o.until, "until", "", "dump: only messages received before this time (RFC 3339, or a duration ago)")
	}
	if cmd == "" || cmd == "purge" {
		fs.BoolVar(&o.yes, "yes", false, "purge: do not ask for confirmation")
	}
	return fs, o
}

func printQueueUsage(fs *flag.FlagSet, w io.Writer) {
	printUsageText(queueUsage, fs, w)
}

// printUsageText prints usage and the flags of fs to w.
func printUsageText(usage string, fs *flag.FlagSet, w io.Writer) {
	fmt.Fprint(w, usage)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// queueRef is one queue to look at.
type queueRef struct {
	name, dir string
	// orphanOf names the configuration that has no output of this queue
	// directory's name (a removed output's backlog, kept on disk, or an
	// output of another configuration); empty for a configured output.
	orphanOf string
	// link is where the queue directory points when it is a symbolic
	// link: the relay and the read-only commands follow it, purge does
	// not.
	link string
}

// findQueues returns the data dir and the queues o selects.
func findQueues(o *queueOptions) (string, []queueRef, error) {
	dataDir := o.dataDir
	var configured []string
	if dataDir == "" {
		cfg, err := loadConfig(o.configPath)
		if err != nil {
			return "", nil, err
		}
		dataDir = cfg.DataDir
		for _, oc := range cfg.Outputs {
			configured = append(configured, oc.Name)
		}
	}
	var queues []queueRef
	for _, name := range configured {
		queues = append(queues, queueRef{name: name, dir: filepath.Join(dataDir, name)})
	}
	des, _ := os.ReadDir(dataDir) // a data dir not yet created holds no queue
	for _, de := range des {
		// A symbolic link to a directory counts: the relay follows it.
		isDir := de.IsDir()
		if de.Type()&fs.ModeSymlink != 0 {
			fi, err := os.Stat(filepath.Join(dataDir, de.Name()))
			isDir = err == nil && fi.IsDir()
		}
		if !isDir || slices.Contains(configured, de.Name()) || !isQueueDir(filepath.Join(dataDir, de.Name()), de.Name()) {
			continue
		}
		var orphanOf string
		switch {
		case o.dataDir != "":
		case o.configPath == "":
			orphanOf = "the built-in configuration (give -config with the relay's file)"
		default:
			orphanOf = o.configPath
		}
		queues = append(queues, queueRef{name: de.Name(), dir: filepath.Join(dataDir, de.Name()), orphanOf: orphanOf})
	}
	for i := range queues {
		queues[i].link = linkTarget(queues[i].dir)
	}
	if o.output != "" {
		i := slices.IndexFunc(queues, func(q queueRef) bool { return q.name == o.output })
		if i >= 0 {
			return dataDir, queues[i : i+1], nil
		}
		// A queue directory emptied by a purge holds no queue file.
		dir := filepath.Join(dataDir, o.output)
		if fi, err := os.Stat(dir); err == nil && fi.IsDir() && queue.CheckName(o.output) == nil {
			return dataDir, []queueRef{{name: o.output, dir: dir, link: linkTarget(dir)}}, nil
		}
		return "", nil, &usageError{fmt.Sprintf("-output %q: no such output or queue in data_dir %s (there are: %s)", o.output, dataDir, queueNames(queues))}
	}
	return dataDir, queues, nil
}

// linkTarget returns what dir points to if it is a symbolic link, or "".
func linkTarget(dir string) string {
	fi, err := os.Lstat(dir)
	if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		return ""
	}
	if t, err := os.Readlink(dir); err == nil {
		return t
	}
	return "?"
}

// usageError is a command line that is wrong: a bad flag or argument, or
// one that names what is not there. It exits 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func queueNames(qs []queueRef) string {
	if len(qs) == 0 {
		return "none"
	}
	names := make([]string, len(qs))
	for i, q := range qs {
		names[i] = q.name
	}
	return strings.Join(names, ", ")
}

// isQueueDir reports whether dir holds a queue named name.
func isQueueDir(dir, name string) bool {
	des, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, de := range des {
		if strings.HasPrefix(de.Name(), name+".diskqueue.") || strings.HasPrefix(de.Name(), "inflight.journal") {
			return true
		}
	}
	return false
}

// dataDirState says whether a relay runs on dataDir, and how that affects
// what a read-only command reports.
func dataDirState(dataDir string) (live bool, note string) {
	pid, held, err := relay.DataDirHolder(dataDir)
	switch {
	case err != nil:
		return true, fmt.Sprintf("data_dir %s: cannot tell whether a relay runs on it (%v); reading as if one did: the figures are a snapshot", dataDir, err)
	case held && pid > 0 && relay.DataDirTool(dataDir) != "":
		return true, fmt.Sprintf("data_dir %s is in use by %q, process %d, which may be discarding files: read-only, beside it; the figures are a snapshot of files that change while they are read", dataDir, relay.DataDirTool(dataDir), pid)
	case held && pid > 0:
		return true, fmt.Sprintf("data_dir %s is in use by a running relay, process %d: read-only, beside it; the figures are a snapshot of files that change while they are read", dataDir, pid)
	case held:
		return true, fmt.Sprintf("data_dir %s is in use by a running relay: read-only, beside it; the figures are a snapshot of files that change while they are read", dataDir)
	}
	return false, fmt.Sprintf("data_dir %s: no relay runs on it; the files are at rest", dataDir)
}

// inspect reads one queue; a queue whose directory does not exist yet is
// empty.
func inspect(q queueRef, opts queue.InspectOptions) (*queue.Report, error) {
	if _, err := os.Stat(q.dir); errors.Is(err, fs.ErrNotExist) {
		return &queue.Report{}, nil
	}
	return queue.Inspect(q.dir, q.name, opts)
}

func queueTitle(q queueRef) string {
	t := fmt.Sprintf("output %q (%s)", q.name, q.dir)
	if q.link != "" {
		t = fmt.Sprintf("output %q (%s, a symbolic link to %s)", q.name, q.dir, q.link)
	}
	if q.orphanOf != "" {
		t += ", not an output of " + q.orphanOf + ": a removed output's backlog, or another configuration's"
	}
	return t
}

func queueStat(queues []queueRef, live bool, stdout, stderr io.Writer) int {
	status := 0
	now := time.Now()
	for _, q := range queues {
		r, err := inspect(q, queue.InspectOptions{Live: live})
		if err != nil {
			fmt.Fprintf(stderr, "relay queue stat: %v\n", err)
			status = 1
			continue
		}
		fmt.Fprintf(stdout, "%s:\n", queueTitle(q))
		fmt.Fprintf(stdout, "  waiting:   %s (%s of messages) in %s, %s in the queue files\n",
			plural(int(r.Messages), "message"), byteSize(r.DataBytes), plural(int(r.Records), "record"), byteSize(r.Bytes))
		fmt.Fprintf(stdout, "  in flight: %s (%s) of those, taken by the output and not confirmed; sent first after a restart\n",
			plural(int(r.InFlightRecords), "record"), plural(int(r.InFlightMessages), "message"))
		fmt.Fprintf(stdout, "  files:     %s holding waiting records; %s on disk in all\n", plural(r.DataFiles, "data file"), byteSize(r.DiskBytes))
		fmt.Fprintf(stdout, "  oldest:    %s\n", stamp(r.Oldest, now))
		fmt.Fprintf(stdout, "  newest:    %s\n", stamp(r.Newest, now))
		if len(r.Damage) > 0 {
			fmt.Fprintf(stdout, "  damaged:   %s, not counted above (relay queue verify says where)\n", plural(len(r.Damage), "region"))
		}
		for _, n := range r.Notes {
			fmt.Fprintf(stdout, "  note: %s\n", n)
		}
	}
	return status
}

func stamp(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return fmt.Sprintf("%s (%s ago)", t.UTC().Format(time.RFC3339Nano), now.Sub(t).Round(time.Second))
}

func queueVerify(queues []queueRef, live bool, stdout, stderr io.Writer) int {
	status := 0
	for _, q := range queues {
		r, err := inspect(q, queue.InspectOptions{Live: live})
		if err != nil {
			fmt.Fprintf(stderr, "relay queue verify: %v\n", err)
			status = 1
			continue
		}
		if len(r.Damage) == 0 {
			fmt.Fprintf(stdout, "%s: sound: %s with %s checked\n", queueTitle(q), plural(int(r.Records), "record"), plural(int(r.Messages), "message"))
		} else {
			status = 1
			held := lostSummary(r.DamagedMessages())
			fmt.Fprintf(stdout, "%s: DAMAGED: %s, %s; %s with %s intact\n", queueTitle(q), plural(len(r.Damage), "damaged region"), held,
				plural(int(r.Records), "record"), plural(int(r.Messages), "message"))
			for _, d := range r.Damage {
				fmt.Fprintf(stdout, "  %s\n", d)
			}
		}
		for _, n := range r.Notes {
			fmt.Fprintf(stdout, "  note: %s\n", n)
		}
	}
	if live {
		fmt.Fprintln(stdout, "note: with the relay running, an incomplete record at the end of the newest data file or journal segment is taken for a write in progress, not damage")
	}
	return status
}

// lostSummary says how many messages the damaged regions held: n in
// those whose count is known, more in the others if unknown.
func lostSummary(n int, unknown bool) string {
	switch {
	case unknown && n == 0:
		return "messages lost: count unknown"
	case unknown:
		return fmt.Sprintf("at least %s lost", plural(n, "message"))
	}
	return fmt.Sprintf("%s lost", plural(n, "message"))
}

// dumpLine is one message of relay queue dump -json.
type dumpLine struct {
	Output        string `json:"output"`
	Received      string `json:"received,omitempty"`
	Listener      string `json:"listener"`
	Sender        string `json:"sender"`
	Epoch         uint32 `json:"epoch,omitempty"`
	Seq           uint64 `json:"seq,omitempty"`
	Message       string `json:"message,omitempty"`
	MessageBase64 []byte `json:"message_base64,omitempty"`
}

// dumpSelection checks dump's -n, -since and -until and returns the
// times; an error is a usage error.
func dumpSelection(o *queueOptions, now time.Time) (since, until time.Time, err error) {
	if since, err = parseWhen(o.since, now); err != nil {
		return since, until, fmt.Errorf("-since: %w", err)
	}
	if until, err = parseWhen(o.until, now); err != nil {
		return since, until, fmt.Errorf("-until: %w", err)
	}
	if o.limit < 0 {
		return since, until, errors.New("-n must not be negative")
	}
	// -since is inclusive, -until exclusive: a range that does not put
	// -since first selects nothing, which is a mistake, not an answer.
	if !since.IsZero() && !until.IsZero() && !since.Before(until) {
		return since, until, fmt.Errorf("-since %s (%s) is not before -until %s (%s): the range selects no message",
			o.since, since.UTC().Format(time.RFC3339Nano), o.until, until.UTC().Format(time.RFC3339Nano))
	}
	return since, until, nil
}

func queueDump(dataDir string, queues []queueRef, o *queueOptions, since, until time.Time, stdout, stderr io.Writer) int {
	live, note := dataDirState(dataDir)
	fmt.Fprintln(stderr, note)
	w := bufio.NewWriterSize(stdout, 64<<10)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	printed, status := 0, 0
	var werr error
	var line []byte
	for _, q := range queues {
		if o.limit > 0 && printed >= o.limit {
			break
		}
		n := 0
		r, err := inspect(q, queue.InspectOptions{Live: live, Entry: func(e queue.Entry) bool {
			if (!since.IsZero() || !until.IsZero()) && e.Received.IsZero() {
				return true
			}
			if (!since.IsZero() && e.Received.Before(since)) || (!until.IsZero() && !e.Received.Before(until)) {
				return true
			}
			if o.asJSON {
				l := dumpLine{Output: q.name, Listener: e.Listener, Sender: e.Source, Epoch: e.Epoch, Seq: e.Seq}
				if !e.Received.IsZero() {
					l.Received = e.Received.UTC().Format(time.RFC3339Nano)
				}
				if utf8.Valid(e.Data) {
					l.Message = string(e.Data)
				} else {
					l.MessageBase64 = e.Data
				}
				werr = enc.Encode(l)
			} else {
				// As a file output writes it: a message with a line feed
				// stays one line, and a sender's terminal escapes do not
				// reach the administrator's terminal. -json has the bytes.
				line = outputs.AppendLine(line[:0], e.Data, false)
				_, werr = w.Write(line)
			}
			n++
			printed++
			return werr == nil && (o.limit == 0 || printed < o.limit)
		}})
		if err != nil {
			fmt.Fprintf(stderr, "relay queue dump: %v\n", err)
			status = 1
			continue
		}
		if werr != nil {
			break
		}
		fmt.Fprintf(stderr, "output %q: %s dumped\n", q.name, plural(n, "message"))
		if len(r.Damage) > 0 {
			fmt.Fprintf(stderr, "output %q: %s skipped (relay queue verify says where)\n", q.name, plural(len(r.Damage), "damaged region"))
		}
	}
	if err := w.Flush(); werr == nil {
		werr = err
	}
	if werr != nil {
		fmt.Fprintf(stderr, "relay queue dump: write: %v\n", werr)
		return 1
	}
	return status
}

// parseWhen reads a -since or -until value: an RFC 3339 time, or a
// duration before now.
func parseWhen(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time (2026-01-02T15:04:05Z) nor a duration ago (90m)", s)
}

func queuePurge(dataDir string, q queueRef, o *queueOptions, stdin io.Reader, stdout, stderr io.Writer) int {
	if q.link != "" {
		// Removing files through a link would reach wherever it points,
		// which need not be this queue's, nor in data_dir.
		fmt.Fprintf(stderr, "relay queue purge: refused: %s is a symbolic link to %s; purge removes files only in a queue directory that is not a link (replace the link with the directory, or remove the files there by hand)\n", q.dir, q.link)
		return 1
	}
	if pid, held, err := relay.DataDirHolder(dataDir); err == nil && held {
		who := "a running relay"
		if pid > 0 {
			who = fmt.Sprintf("a running relay, process %d,", pid)
		}
		fmt.Fprintf(stderr, "relay queue purge: refused: %s holds data_dir %s; stop it first (the relay has the queue's files open)\n", who, dataDir)
		return 1
	}
	// Held until the purge is over, so that no relay starts on the files
	// meanwhile.
	release, err := relay.LockDataDir(dataDir, "relay queue purge")
	if err != nil {
		fmt.Fprintf(stderr, "relay queue purge: refused: %v\n", err)
		return 1
	}
	defer release()
	r, err := inspect(q, queue.InspectOptions{})
	if err != nil {
		fmt.Fprintf(stderr, "relay queue purge: %v\n", err)
		return 1
	}
	if r.DiskBytes == 0 {
		fmt.Fprintf(stdout, "%s: nothing to purge\n", queueTitle(q))
		return 0
	}
	fmt.Fprintf(stdout, "%s: %s (%s) waiting in %s, oldest %s, %s on disk\n", queueTitle(q),
		plural(int(r.Messages), "message"), plural(int(r.Records), "record"), plural(r.DataFiles, "data file"), stamp(r.Oldest, time.Now()), byteSize(r.DiskBytes))
	if !o.yes {
		fmt.Fprintf(stdout, "Discard them for good? [y/N] ")
		answer, _ := bufio.NewReader(stdin).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
			fmt.Fprintln(stdout)
			fmt.Fprintln(stderr, "relay queue purge: not confirmed; nothing purged")
			return 1
		}
	}
	res, err := queue.Purge(q.dir, q.name)
	if err != nil {
		fmt.Fprintf(stderr, "relay queue purge: %v (%s removed before the error)\n", err, plural(res.Files, "file"))
		return 1
	}
	fmt.Fprintf(stdout, "purged output %q: %s discarded, %s removed (%s)\n", q.name, plural(int(r.Messages), "message"), plural(res.Files, "file"), byteSize(res.Bytes))
	return 0
}

// byteSize formats n bytes for people.
func byteSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d bytes", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// checkQueueDirs is -check-config's check that the relay could open every
// output's queue.
func checkQueueDirs(path string, cfg *relay.Config) error {
	data, err := configText(path)
	if err != nil {
		return err
	}
	return relay.CheckQueueDirs(displayName(path), data, cfg)
}

// checkFiles is -check-config's look at the TLS and SASL files cfg names.
func checkFiles(path string, cfg *relay.Config) error {
	data, err := configText(path)
	if err != nil {
		return err
	}
	return relay.CheckFiles(displayName(path), data, cfg)
}

// configText is the text of the configuration at path, or the built-in
// one, for the line numbers of problems.
func configText(path string) ([]byte, error) {
	if path == "" {
		return relayroot.ExampleConfig, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return data, nil
}
