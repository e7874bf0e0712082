package slurm

import (
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"
)

// ErrBadScriptOptions is wrapped by every error ScriptOptions.Validate
// returns.
var ErrBadScriptOptions = errors.New("slurm: bad script options")

// Defaults of ScriptOptions.
const (
	DefaultJobName    = "raygo"
	DefaultOutput     = "%x-%j.out" // job name and job ID
	DefaultWarnBefore = 2 * time.Minute
	DefaultLauncher   = "raygo-launch"
)

// ScriptOptions describe a batch job that runs a program under raygo on
// whole nodes, one raygo-launch task per node. The zero value of each field
// means its default.
type ScriptOptions struct {
	JobName string // --job-name; "" means DefaultJobName
	Nodes   int    // --nodes; 0 means 1

	// CPUsPerTask is --cpus-per-task, the CPUs raygo gets on each node. 0
	// means whole nodes: --exclusive, and all their memory unless Mem says
	// otherwise.
	CPUsPerTask int
	GPUsPerNode int    // --gpus-per-node; 0 means none
	GPUType     string // optional GPU type, e.g. "a100": --gpus-per-node=a100:4
	// Mem is --mem, memory per node in Slurm's syntax: a number of MiB, or
	// with a suffix K, M, G or T; "0" is all of it. "" means all of it with
	// whole nodes, and the site's default otherwise.
	Mem string
	// Time is --time, the wall-clock limit, as MM, MM:SS, HH:MM:SS, D-HH,
	// D-HH:MM or D-HH:MM:SS; "" means the partition's default.
	Time      string
	Partition string // --partition; "" means the site's default
	Account   string // --account; "" means the user's default
	Output    string // --output; "" means DefaultOutput

	// WarnBefore is how long before the time limit Slurm sends SIGUSR1
	// (--signal=B:USR1@SECONDS), in whole seconds; 0 means
	// DefaultWarnBefore. NoWarning leaves the signal out.
	WarnBefore time.Duration
	NoWarning  bool

	Launcher string   // the raygo-launch command; "" means DefaultLauncher
	Command  []string // the program and its arguments; required
}

// Validate reports every problem with o, each wrapping
// ErrBadScriptOptions and naming the field and the sbatch option.
func (o *ScriptOptions) Validate() error {
	var errs []error
	bad := func(field, option string, value any, problem string) {
		errs = append(errs, fmt.Errorf("%w: %s %q (%s): %s", ErrBadScriptOptions, field, fmt.Sprint(value), option, problem))
	}
	word := func(field, option, v string) {
		if v == "" {
			return
		}
		for _, r := range v {
			if r <= ' ' || r == 0x7f || r == '"' || r == '\'' || r == '\\' {
				bad(field, option, v, "may not hold white space, quotes, backslashes or control characters")
				return
			}
		}
	}
	word("JobName", "--job-name", o.JobName)
	word("Partition", "--partition", o.Partition)
	word("Account", "--account", o.Account)
	word("Output", "--output", o.Output)
	if o.Nodes < 0 {
		bad("Nodes", "--nodes", o.Nodes, "must be at least 1 (0 means 1)")
	}
	if o.CPUsPerTask < 0 {
		bad("CPUsPerTask", "--cpus-per-task", o.CPUsPerTask, "may not be negative (0 means whole nodes)")
	}
	if o.GPUsPerNode < 0 {
		bad("GPUsPerNode", "--gpus-per-node", o.GPUsPerNode, "may not be negative")
	}
	if o.GPUType != "" {
		if o.GPUsPerNode == 0 {
			bad("GPUType", "--gpus-per-node", o.GPUType, "needs GPUsPerNode")
		} else if strings.Trim(o.GPUType, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != "" {
			bad("GPUType", "--gpus-per-node", o.GPUType, "want a GPU type name such as a100 (letters, digits, '_', '.', '-')")
		}
	}
	if o.Mem != "" && !validMem(o.Mem) {
		bad("Mem", "--mem", o.Mem, "want MiB, or a number with a suffix K, M, G or T (e.g. 64G); 0 is all of the node's memory")
	}
	var limit time.Duration
	if o.Time != "" {
		var err error
		if limit, err = ParseTimeLimit(o.Time); err != nil {
			errs = append(errs, fmt.Errorf("%w: Time (--time): %w", ErrBadScriptOptions, err))
		}
	}
	if !o.NoWarning {
		warn := o.warnBefore()
		switch {
		case warn < 0 || warn%time.Second != 0 || warn > 65535*time.Second:
			bad("WarnBefore", "--signal", warn, "want whole seconds from 1 to 65535 (0 means 120)")
		case limit > 0 && warn >= limit:
			bad("WarnBefore", "--signal", warn, fmt.Sprintf("not shorter than the time limit %s; shorten it or set NoWarning", o.Time))
		}
	}
	if len(o.Command) == 0 || o.Command[0] == "" {
		bad("Command", "srun", strings.Join(o.Command, " "), "no program to run")
	}
	for _, a := range append([]string{o.Launcher}, o.Command...) {
		if strings.IndexByte(a, 0) >= 0 {
			bad("Command", "srun", a, "arguments may not hold NUL bytes")
		}
	}
	return errors.Join(errs...)
}

func (o *ScriptOptions) warnBefore() time.Duration {
	if o.WarnBefore == 0 {
		return DefaultWarnBefore
	}
	return o.WarnBefore
}

// validMem reports whether s is a memory size sbatch's --mem accepts.
func validMem(s string) bool {
	digits := strings.TrimRight(s, "KkMmGgTt")
	if len(s)-len(digits) > 1 || digits == "" {
		return false
	}
	_, err := strconv.ParseUint(digits, 10, 64)
	return err == nil
}

// ParseTimeLimit parses a Slurm time limit in one of the forms --time
// accepts: MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS. The first
// field may be as large as needed ("90" is 90 minutes); the others must be
// below 60, or 24 for hours after days. It rejects a zero limit, which
// Slurm would take as no limit at all, and the words Slurm takes for that
// (infinite, unlimited).
func ParseTimeLimit(s string) (time.Duration, error) {
	const forms = "want MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS, " +
		"with minutes and seconds below 60 and hours after days below 24"
	days, rest, hasDays := strings.Cut(s, "-")
	if !hasDays {
		days, rest = "", s
	}
	parts := strings.Split(rest, ":")
	// units[i] is the length of parts[i]; the leading field is unbounded.
	var units []time.Duration
	switch {
	case hasDays && len(parts) <= 3:
		units = []time.Duration{time.Hour, time.Minute, time.Second}[:len(parts)]
	case len(parts) == 1:
		units = []time.Duration{time.Minute}
	case len(parts) == 2:
		units = []time.Duration{time.Minute, time.Second}
	case len(parts) == 3:
		units = []time.Duration{time.Hour, time.Minute, time.Second}
	default:
		return 0, fmt.Errorf("time limit %q: %s", s, forms)
	}
	const maxLimit = 100 * 365 * 24 * time.Hour
	var secs int64 // the sum so far, in seconds: cannot overflow, unlike nanoseconds
	add := func(f string, unit time.Duration, below int64) bool {
		if f == "" || len(f) > 9 || strings.Trim(f, "0123456789") != "" {
			return false
		}
		n, _ := strconv.ParseInt(f, 10, 64)
		if below > 0 && n >= below {
			return false
		}
		secs += n * int64(unit/time.Second) // n < 1e9, unit <= 1 day
		return true
	}
	ok := !hasDays || add(days, 24*time.Hour, 0)
	for i, f := range parts {
		var below int64
		switch {
		case i == 0 && !hasDays: // leading field: any size
		case units[i] == time.Hour:
			below = 24
		default:
			below = 60
		}
		ok = ok && add(f, units[i], below)
	}
	limit := time.Duration(min(secs, int64(maxLimit/time.Second)+1)) * time.Second
	switch {
	case !ok:
		return 0, fmt.Errorf("time limit %q: %s", s, forms)
	case limit > maxLimit:
		return 0, fmt.Errorf("time limit %q: longer than 100 years", s)
	case limit == 0:
		return 0, fmt.Errorf("time limit %q: zero means no limit to Slurm; leave Time empty for the partition's default", s)
	}
	return limit, nil
}

// Script renders a batch script for opts, ready for sbatch: #SBATCH lines
// for the job, each with a comment saying why, then
//
//	exec srun raygo-launch -- PROGRAM ARGS...
//
// with every word shell-quoted where it needs to be (and srun given
// --cpus-per-task too, when CPUsPerTask is set). srun runs one
// raygo-launch per node. The script asks Slurm for SIGUSR1 WarnBefore
// ahead of the time limit; it asks for it on the batch shell (B:), which
// exec has replaced with srun, and srun passes it on to every task. (Left
// to bash, the signal would kill the batch shell and end the job early.)
func Script(opts ScriptOptions) (string, error) {
	if err := opts.Validate(); err != nil {
		return "", err
	}
	o := opts
	if o.JobName == "" {
		o.JobName = DefaultJobName
	}
	if o.Nodes == 0 {
		o.Nodes = 1
	}
	if o.Output == "" {
		o.Output = DefaultOutput
	}
	if o.Launcher == "" {
		o.Launcher = DefaultLauncher
	}

	var b strings.Builder
	comment := func(lines ...string) {
		for _, l := range lines {
			b.WriteString("# " + l + "\n")
		}
	}
	sbatch := func(format string, args ...any) {
		fmt.Fprintf(&b, "#SBATCH "+format+"\n", args...)
	}
	launcher := path.Base(o.Launcher)

	b.WriteString("#!/bin/bash\n")
	comment("raygo batch job, written by `raygo slurm script`. Submit it with: sbatch FILE",
		"sbatch reads the #SBATCH lines up to the first command; options on its",
		"command line override them.")
	b.WriteString("\n")

	comment("The job's name in squeue and sacct.")
	sbatch("--job-name=%s", o.JobName)
	comment("Nodes for the raygo cluster.")
	sbatch("--nodes=%d", o.Nodes)
	comment(fmt.Sprintf("One task per node: %s, which brings up raygo on its node;", launcher),
		"raygo spreads the work over the node's CPUs and GPUs itself.")
	sbatch("--ntasks-per-node=1")
	if o.CPUsPerTask > 0 {
		comment("CPUs for raygo on each node.")
		sbatch("--cpus-per-task=%d", o.CPUsPerTask)
	} else {
		comment("No CPU count given: take whole nodes, so that raygo may use every CPU",
			"and no other job shares them.")
		sbatch("--exclusive")
	}
	switch {
	case o.Mem != "":
		comment("Memory per node.")
		sbatch("--mem=%s", o.Mem)
	case o.CPUsPerTask == 0:
		comment("All of each node's memory, as the job has whole nodes.")
		sbatch("--mem=0")
	}
	if o.GPUsPerNode > 0 {
		comment("GPUs on each node.")
		if o.GPUType != "" {
			sbatch("--gpus-per-node=%s:%d", o.GPUType, o.GPUsPerNode)
		} else {
			sbatch("--gpus-per-node=%d", o.GPUsPerNode)
		}
	}
	if o.Time != "" {
		limit, _ := ParseTimeLimit(o.Time) // checked by Validate
		comment(fmt.Sprintf("Wall-clock limit, %s; Slurm ends the job when it runs out.", spellDuration(limit)))
		sbatch("--time=%s", o.Time)
	} else {
		comment("No --time: the partition's default time limit applies.")
	}
	if o.Partition != "" {
		comment("Partition (queue) to run in.")
		sbatch("--partition=%s", o.Partition)
	}
	if o.Account != "" {
		comment("Account the job is charged to.")
		sbatch("--account=%s", o.Account)
	}
	comment("Output of this script and of every task; %x is the job name, %j the job ID.")
	sbatch("--output=%s", o.Output)
	warn := int(o.warnBefore() / time.Second)
	if !o.NoWarning {
		comment(fmt.Sprintf("Early warning: SIGUSR1 %d s before the time limit, to this batch shell", warn),
			"only (B:); see below for how it reaches raygo.")
		sbatch("--signal=B:USR1@%d", warn)
	}
	b.WriteString("\n")

	comment(fmt.Sprintf("srun runs %s once per node; it reads the job's SLURM_* variables,", launcher),
		"joins the nodes into one raygo cluster and runs the program.")
	if !o.NoWarning {
		comment("exec replaces this shell with srun, so the early warning goes to srun,",
			fmt.Sprintf("which passes it on to every %s. Were bash still here, SIGUSR1", launcher),
			"would kill it and end the job early.")
	} else {
		comment("exec replaces this shell with srun, whose exit status becomes the job's.")
	}
	words := []string{"exec", "srun"}
	if o.CPUsPerTask > 0 {
		comment("srun is told --cpus-per-task again: Slurm 22.05 and some later versions",
			"do not pass the job's on to srun, which then gives raygo-launch one CPU.")
		words = append(words, fmt.Sprintf("--cpus-per-task=%d", o.CPUsPerTask))
	}
	words = append(words, o.Launcher, "--")
	words = append(words, o.Command...)
	for i, w := range words {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(shellQuote(w))
	}
	b.WriteByte('\n')
	return b.String(), nil
}

// spellDuration writes d, a whole number of seconds, in words:
// "2 days 12 hours", "30 minutes".
func spellDuration(d time.Duration) string {
	var parts []string
	for _, u := range []struct {
		name string
		size time.Duration
	}{{"day", 24 * time.Hour}, {"hour", time.Hour}, {"minute", time.Minute}, {"second", time.Second}} {
		if n := d / u.size; n > 0 {
			d -= n * u.size
			unit := u.name
			if n > 1 {
				unit += "s"
			}
			parts = append(parts, fmt.Sprintf("%d %s", n, unit))
		}
	}
	return strings.Join(parts, " ")
}

// shellQuote returns s as one word for a POSIX shell: as it is when that
// is safe, else in single quotes.
func shellQuote(s string) string {
	if s == "" {
		return "''"
	}
	if strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@%+=:,./-") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
