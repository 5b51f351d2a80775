// Command trainer trains the classifier bundle's model: the same as
// `voicegw classify train`, without the gateway's cgo dependencies.
//
//	go run ./classifier/internal/trainer -bundle classifier/packs \
//	  -dev classifier/testdata/dev.jsonl [TRAIN.jsonl...]
//
// Without files it trains on classifier.TrainingFiles("classifier/testdata").
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
	files := flag.Args()
	if len(files) == 0 {
		files = classifier.TrainingFiles("classifier/testdata")
	}
	opt := classifier.TrainOptions{Version: *version, ThresholdOn: classifier.WriterFiles(files)}
	if _, err := classifier.TrainBundle(*bundle, files, *dev, opt, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "trainer:", err)
		os.Exit(1)
	}
}
