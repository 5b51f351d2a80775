package main

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/voicegw/voicegw/tenants"
)

// runCheck implements `voicegw check --config FILE`: exit 0 and
// "ok: N tenants, M backends" for a valid file, or exit 1 with one line per
// problem on stdout, "file:line: field.path: message". Secrets are resolved
// (so a missing one is caught) but never printed.
func runCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "config file (YAML)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *configPath == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: voicegw check --config FILE")
		return 2
	}
	c, problems := tenants.Check(*configPath)
	if len(problems) > 0 {
		err := &tenants.ConfigError{File: *configPath, Problems: problems}
		fmt.Fprintln(stdout, strings.TrimRight(err.Error(), "\n"))
		return 1
	}
	fmt.Fprintf(stdout, "ok: %d tenants, %d backends\n", len(c.Tenants), len(c.Backends))
	return 0
}
