//go:build !linux

package siptest

import "errors"

var errNoCapture = errors.New("siptest: Sniff needs Linux (AF_PACKET)")

func (s *Sniffer) start() error { return errNoCapture }

func requireCapture(tb testingTB, err error) {
	tb.Helper()
	if inCI() {
		tb.Fatal(err)
	}
	tb.Skip(err)
}
