package main

import (
	"flag"
	"fmt"
	"io"
)

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
	fmt.Fprintln(stderr, "voicegw check: config files are not available in this build yet")
	return 2
}
