package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/voicegw/voicegw/tenants"
)

// runCheck implements `voicegw check --config FILE`: exit 0 and a summary
// for a valid file, or exit 1 with one line per problem naming the file,
// line and field path. Secrets are resolved (so a missing one is caught)
// but never printed.
func runCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "config file (YAML)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *configPath == "" {
		fmt.Fprintln(stderr, "voicegw check: --config FILE is required")
		return 2
	}
	c, err := tenants.Load(*configPath)
	if err != nil {
		var ce *tenants.ConfigError
		if errors.As(err, &ce) {
			fmt.Fprintln(stdout, ce.Error())
			return 1
		}
		fmt.Fprintf(stderr, "voicegw check: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "ok: %d tenants, %d backends\n", len(c.Tenants), len(c.Backends))
	return 0
}
