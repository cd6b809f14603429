// Command clipgo is the command-line front of the clipgo pipeline: one subcommand per stage.
// It only turns flags into stage configs; the work lives in the packages under stages/.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	defer func() {
		// A panic is a bug of clipgo's, never the user's input: say so in one line, and keep
		// the stack for the report.
		if r := recover(); r != nil {
			fmt.Fprintf(os.Stderr, "clipgo: internal error (a bug; please report it with the command line): %v\n%s", r, debug.Stack())
			os.Exit(2)
		}
	}()
	// SIGUSR1 stops as SIGTERM does: Open MPI's mpirun forwards it to every rank (and not
	// SIGTERM), and batch systems send it ahead of a time limit.
	ctx, stop := signalContext(os.Interrupt, syscall.SIGTERM, syscall.SIGUSR1)
	defer stop()
	if err := newRootCmd().ExecuteContext(ctx); err != nil {
		if errors.Is(err, context.Canceled) {
			fmt.Fprintln(os.Stderr, "clipgo: interrupted")
			os.Exit(interruptedExit(ctx))
		}
		fmt.Fprintln(os.Stderr, "clipgo:", err)
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	var verbose bool
	root := &cobra.Command{
		Use:   "clipgo",
		Short: "CLIP-style contrastive image–text pretraining, in one Go binary",
		Long: `clipgo prepares image–caption data as Parquet shards, feeds it through a concurrent
input pipeline, and trains and uses CLIP-style models. Each stage is a subcommand.`,
		Version:       version(debug.ReadBuildInfo()),
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRun: func(cmd *cobra.Command, args []string) {
			level := slog.LevelInfo
			if verbose {
				level = slog.LevelDebug
			}
			slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})))
		},
	}
	root.PersistentFlags().BoolVarP(&verbose, "verbose", "v", false, "debug logging")
	root.SetVersionTemplate("{{.Version}}\n")
	root.Flags().Bool("version", false, "print the module version and the commit this binary was built from") // not -v: that is --verbose
	root.AddCommand(newPrepareCmd(), newInspectCmd(), newTokenizeCmd(), newPretrainCmd(), newParityCmd(),
		newZeroShotCmd(), newRetrievalCmd(), newProbeCmd(), newFilterCmd(), newEmbedCmd(), newSearchCmd(), newReportCmd(), newBenchCmd(), newConvertCmd(), newExportCmd(), newExplainCmd())
	return root
}

// version describes the binary from its build information: the module's version ("(devel)"
// when the go command knows none), and the commit it was built from, with "modified" when
// the working tree had uncommitted changes; a binary built without version control
// information says so rather than guess.
func version(info *debug.BuildInfo, ok bool) string {
	if !ok {
		return "clipgo (devel): no build information in this binary"
	}
	v := info.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, at string
	modified := false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	out := "clipgo " + v
	switch {
	case rev == "":
		out += ", commit unknown (built without version control information)"
	default:
		out += ", commit " + rev
		if at != "" {
			out += " (" + at + ")"
		}
		if modified {
			out += ", with uncommitted changes"
		}
	}
	return out + ", " + info.GoVersion
}

// logger is the process's logger, set up by the root command from --verbose.
func logger() *slog.Logger { return slog.Default() }

// rankLogger is the logger of one rank of a data-parallel job: rank 0 logs as one process
// does, the others only their warnings and errors; each line names its rank.
func rankLogger(rank int) *slog.Logger {
	if rank == 0 {
		return logger().With("rank", 0)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("rank", rank)
}

// stoppedBy is the cause of a context a signal cancelled.
type stoppedBy struct{ sig os.Signal }

func (s stoppedBy) Error() string { return "stopped by " + s.sig.String() }

// Unwrap returns context.Canceled: code that reports context.Cause stays an interruption.
func (s stoppedBy) Unwrap() error { return context.Canceled }

// signalContext returns a context cancelled, with the signal as its cause, when one of sigs
// arrives; as signal.NotifyContext, later signals are caught too until stop is called.
func signalContext(sigs ...os.Signal) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(context.Background())
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, sigs...)
	done := make(chan struct{})
	go func() {
		select {
		case s := <-ch:
			cancel(stoppedBy{s})
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		close(done)
		cancel(nil)
	}
}

// interruptedExit returns the exit status of a command that ctx's signal stopped: 128 plus
// the signal's number, as shells report it (SIGINT 130, SIGTERM 143, SIGUSR1 138); 130 when
// no signal is known.
func interruptedExit(ctx context.Context) int {
	var s stoppedBy
	if errors.As(context.Cause(ctx), &s) {
		if n, ok := s.sig.(syscall.Signal); ok {
			return 128 + int(n)
		}
	}
	return 130
}
