package media_test

import (
	"os"
	"testing"

	"github.com/voicegw/voicegw/media"
)

func writeWAVFile(t testing.TB, path string, rate int, samples []int16) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := media.WriteWAV(f, rate, samples); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}
