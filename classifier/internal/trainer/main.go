// Command trainer trains the classifier bundle's model: the same as
// `voicegw classify train`, without the gateway's cgo dependencies.
//
//	go run ./classifier/internal/trainer -bundle classifier/packs \
//	  -dev classifier/testdata/dev.jsonl classifier/testdata/train/*.jsonl
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/voicegw/voicegw/classifier"
)

func main() {
	bundle := flag.String("bundle", "classifier/packs", "bundle directory (pack, lexicon; model.json and manifest.json are written)")
	dev := flag.String("dev", "", "development set to report (JSONL)")
	version := flag.String("version", "", "model version (default: the pack's)")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: trainer [-bundle DIR] [-dev FILE] TRAIN.jsonl...")
		os.Exit(2)
	}
	if _, err := classifier.TrainBundle(*bundle, flag.Args(), *dev, classifier.TrainOptions{Version: *version}, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "trainer:", err)
		os.Exit(1)
	}
}
