//go:build !unix

package rig

import "time"

func processCPU() (time.Duration, bool) { return 0, false }
