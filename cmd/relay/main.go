// Command relay is a syslog relay: it receives syslog over UDP, TCP, TLS, RELP
// and a Unix socket, keeps every accepted message in a disk queue per output, and
// forwards it to upstream syslog servers or files until it is delivered.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"
	_ "time/tzdata" // listener timezones work on hosts without a zoneinfo database

	"github.com/prometheus/client_golang/prometheus"

	relayroot "github.com/relay-syslog/relay"
	"github.com/relay-syslog/relay/metrics"
	"github.com/relay-syslog/relay/relay"
)

// version and revision are set at build time with -ldflags
// "-X main.version=... -X main.revision=..." (make build does); without
// them, what Go recorded of the module and the VCS is reported.
var (
	version  = "dev"
	revision = ""
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// relayUsage is printed, with the flags, by relay -h and relay help.
const relayUsage = `Usage:
  relay [flags]                      run the relay
  relay send [flags] [MESSAGE...]    send test messages to a relay or any syslog server (relay send -h)
  relay queue stat|verify|dump|purge [flags]
                                     look into the outputs' disk queues, or discard one (relay queue -h)
  relay version                      print the version
  relay help                         print this help

Without -config, relay runs on its built-in configuration (config.toml.example:
UDP and TCP on 127.0.0.1:5514, everything to ./data/messages.log, metrics on
127.0.0.1:9514). Signals: SIGHUP reloads the configuration file (an invalid
one is refused and the running one stays), SIGTERM and SIGINT stop.

Exit status: 0 after a clean stop (or a valid -check-config), 1 on an error,
2 on a usage error.

Flags:
`

// subcommands are the words relay accepts before its flags.
var subcommands = map[string]func(args []string, stdout, stderr io.Writer) int{
	"send":    runSend,
	"queue":   runQueue,
	"version": runVersion,
	"help":    runHelp,
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, ok := subcommands[args[0]]
		if !ok {
			fmt.Fprintf(stderr, "relay: unknown command %q (relay -h lists the commands)\n", args[0])
			return 2
		}
		return cmd(args[1:], stdout, stderr)
	}
	fs, opts := relayFlags()
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(fs, stdout)
			return 0
		}
		fmt.Fprintf(stderr, "relay: %v (relay -h lists the flags)\n", err)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "relay: unexpected argument %q: the relay takes only flags (relay -h lists them and the commands)\n", fs.Arg(0))
		return 2
	}
	configPath, checkOnly, logLevel, logFormat := opts.configPath, opts.checkOnly, opts.logLevel, opts.logFormat
	bi := buildInfo()
	if *opts.showVersion {
		printVersion(stdout, bi)
		return 0
	}
	log, err := newLogger(stderr, *logLevel, *logFormat)
	if err != nil {
		fmt.Fprintf(stderr, "relay: %v\n", err)
		return 2
	}
	// Lines from packages that use the standard log package (net/http's
	// server errors) come out in the same format.
	slog.SetDefault(log)

	cfg, err := loadConfig(*configPath)
	if *checkOnly {
		if err != nil {
			fmt.Fprintf(stderr, "%v\n", err)
			return 1
		}
		// The relay would refuse to start without its queue directories,
		// or without the TLS and SASL files the configuration names.
		if err := checkQueueDirs(*configPath, cfg); err != nil {
			fmt.Fprintf(stderr, "%v\n", err)
			return 1
		}
		if err := checkFiles(*configPath, cfg); err != nil {
			fmt.Fprintf(stderr, "%v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "config %s: ok\n", displayName(*configPath))
		noteDataDirInUse(stderr, cfg.DataDir)
		if data, err := configText(*configPath); err == nil {
			for _, note := range append(relay.UnroutedOutputs(data, cfg), relay.FileOutputNotes(data, cfg)...) {
				fmt.Fprintf(stderr, "note: %s\n", note)
			}
		}
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "relay: %v\n", err)
		return 1
	}

	// A soft memory limit makes the garbage collector work harder as the
	// heap nears it instead of letting it grow to twice the live data.
	// GOMEMLIMIT in the environment wins, as Go documents.
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set && *cfg.MemoryLimit > 0 {
		debug.SetMemoryLimit(int64(*cfg.MemoryLimit))
	}

	if *opts.cpuProfile != "" {
		stopProfile, err := startCPUProfile(*opts.cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "relay: -cpuprofile: %v\n", err)
			return 1
		}
		defer stopProfile()
	}

	// Signals are taken over before anything is bound: once a socket
	// answers, a supervisor may signal, and SIGHUP would otherwise kill the
	// process.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	log.Info("relay starting", "version", bi.Version, "revision", bi.Revision, "go", bi.GoVersion, "config", displayName(*configPath))
	reg := prometheus.NewRegistry()
	if err := metrics.RegisterBuildInfo(reg, bi); err != nil {
		log.Error("start", "err", err)
		return 1
	}
	srv, err := relay.New(cfg, relay.Options{Logger: log, Registry: reg, Notify: sdNotify})
	if err != nil {
		log.Error("start", "err", err)
		return 1
	}
	// SIGHUP reloads the configuration file: validated first, applied in
	// place, the old one kept on any error.
	stopReloader := make(chan struct{})
	reloaderDone := make(chan struct{})
	defer func() {
		close(stopReloader)
		<-reloaderDone
	}()
	go func() {
		defer close(reloaderDone)
		// Signals are caught before the relay serves; a SIGHUP meanwhile
		// (a supervisor's reload as soon as the sockets answer) waits in
		// hup and is applied once it does.
		select {
		case <-srv.Serving():
		case <-srv.Stopped():
			return
		case <-stopReloader:
			return
		}
		for {
			select {
			case <-stopReloader:
				return
			case <-hup:
			}
			if *configPath == "" {
				log.Warn("SIGHUP: running on the built-in configuration; there is no file to reload")
			} else {
				log.Info("SIGHUP: reloading", "config", *configPath)
				_ = srv.ReloadFile(*configPath) // the relay logs and counts the outcome
			}
			// Certificates are read again even when the configuration is
			// unchanged: renewing them is the usual reason for a SIGHUP.
			if err := srv.ReloadCertificates(); err != nil {
				log.Error("SIGHUP: reload certificates", "err", err)
			}
		}
	}()

	runErr := make(chan error, 1)
	go func() { runErr <- srv.Run(ctx) }()
	select {
	case err := <-runErr:
		return exitCode(log, err)
	case <-ctx.Done():
	}
	// Stopping: the relay never waits for an upstream, so this is quick;
	// shutdown_timeout bounds it whatever happens. What is not yet sent is
	// on disk either way.
	timer := time.NewTimer(cfg.ShutdownTimeout.Duration)
	defer timer.Stop()
	select {
	case err := <-runErr:
		return exitCode(log, err)
	case <-timer.C:
		log.Error("stop did not finish within shutdown_timeout; exiting anyway (queued messages are on disk)", "shutdown_timeout", cfg.ShutdownTimeout.Duration)
		return 1
	}
}

// relayFlagValues are the relay's flags, as relayFlags defines them.
type relayFlagValues struct {
	configPath, logLevel, logFormat, cpuProfile *string
	checkOnly, showVersion                      *bool
}

func relayFlags() (*flag.FlagSet, relayFlagValues) {
	fs := flag.NewFlagSet("relay", flag.ContinueOnError)
	// Errors are reported once, in one line; the usage only when asked for.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	var v relayFlagValues
	v.configPath = fs.String("config", "", "configuration file (TOML); without it the built-in example configuration is used")
	v.checkOnly = fs.Bool("check-config", false, "validate the configuration, print every problem and exit 0 (valid) or 1")
	v.showVersion = fs.Bool("version", false, "print the version and exit (as relay version does)")
	v.logLevel = fs.String("log-level", "info", "least severe log lines written: debug, info, warn (or warning) or error")
	v.logFormat = fs.String("log-format", "text", `log line format: "text" (key=value) or "json" (one object per line)`)
	v.cpuProfile = fs.String("cpuprofile", "", "write a CPU profile (go tool pprof) of the whole run to this file, for performance work")
	return fs, v
}

func printUsage(fs *flag.FlagSet, w io.Writer) {
	fmt.Fprint(w, relayUsage)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

func runHelp(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintf(stderr, "relay help: unexpected argument %q (relay send -h explains relay send)\n", args[0])
		return 2
	}
	fs, _ := relayFlags()
	printUsage(fs, stdout)
	return 0
}

func runVersion(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintf(stderr, "relay version: unexpected argument %q\n", args[0])
		return 2
	}
	printVersion(stdout, buildInfo())
	return 0
}

func printVersion(w io.Writer, bi metrics.BuildInfo) {
	fmt.Fprintf(w, "relay %s (revision %s, %s)\n", bi.Version, bi.Revision, bi.GoVersion)
}

// noteDataDirInUse tells whoever checks a configuration that a relay
// already runs on its data_dir: the file is for that relay's next reload,
// since a second relay on the same data_dir would refuse to start.
func noteDataDirInUse(w io.Writer, dataDir string) {
	pid, held, err := relay.DataDirHolder(dataDir)
	if err != nil || !held {
		return
	}
	who := "a running relay"
	if pid > 0 {
		who = fmt.Sprintf("a running relay, process %d", pid)
	}
	fmt.Fprintf(w, "note: data_dir %s is in use by %s: apply this file to it with a reload (SIGHUP, systemctl reload relay); a second relay on this data_dir would refuse to start\n", dataDir, who)
}

func exitCode(log *slog.Logger, err error) int {
	if err != nil {
		log.Error("stop", "err", err)
		return 1
	}
	return 0
}

// newLogger returns the relay's logger writing to w at level ("debug",
// "info", "warn" or "warning", "error", in any case) in format ("text" or
// "json").
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	switch strings.ToLower(level) {
	case "debug":
		l = slog.LevelDebug
	case "info":
		l = slog.LevelInfo
	case "warn", "warning":
		l = slog.LevelWarn
	case "error":
		l = slog.LevelError
	default:
		return nil, fmt.Errorf("-log-level %q: use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("-log-format %q: use text or json", format)
}

// buildInfo describes this binary: the version given at build time (a
// development build without one reports the module version Go derived from
// the VCS), the VCS revision and the Go version.
func buildInfo() metrics.BuildInfo {
	bi := metrics.BuildInfo{Version: version, Revision: revision, GoVersion: runtime.Version()}
	info, ok := debug.ReadBuildInfo()
	if ok && bi.Version == "dev" && info.Main.Version != "" && info.Main.Version != "(devel)" {
		bi.Version = info.Main.Version
	}
	if ok && bi.Revision == "" {
		modified := false
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				bi.Revision = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if modified && bi.Revision != "" {
			bi.Revision += "-modified"
		}
	}
	if bi.Revision == "" {
		bi.Revision = "unknown"
	}
	return bi
}

func loadConfig(path string) (*relay.Config, error) {
	if path == "" {
		return relay.ParseConfig("(built-in config.toml.example)", relayroot.ExampleConfig)
	}
	cfg, err := relay.LoadConfig(path)
	var ce *relay.ConfigError
	if err != nil && !errors.As(err, &ce) {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, err
}

func displayName(path string) string {
	if path == "" {
		return "(built-in config.toml.example)"
	}
	return path
}

// startCPUProfile profiles the process into path until the returned
// function is called: on a clean stop, so a SIGTERM ends the profile.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
