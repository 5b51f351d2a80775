package gateway

import (
	"errors"
	"strings"
	"testing"
)

func offerWith(mline string, attrs ...string) string {
	return "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n" + mline + "\r\nc=IN IP4 0.0.0.0\r\n" + strings.Join(attrs, "\r\n") + "\r\n"
}

func TestChooseCodec(t *testing.T) {
	cases := []struct {
		name  string
		offer string
		mime  string
		err   error
	}{
		{"opus preferred", offerWith("m=audio 9 UDP/TLS/RTP/SAVPF 111 0", "a=rtpmap:111 opus/48000/2", "a=rtpmap:0 PCMU/8000"), "audio/opus", nil},
		{"pcmu static", offerWith("m=audio 9 UDP/TLS/RTP/SAVPF 0"), "audio/PCMU", nil},
		{"pcma only", offerWith("m=audio 9 UDP/TLS/RTP/SAVPF 8", "a=rtpmap:8 PCMA/8000"), "audio/PCMA", nil},
		{"g722 only", offerWith("m=audio 9 UDP/TLS/RTP/SAVPF 9", "a=rtpmap:9 G722/8000"), "", errNoAudioCodec},
		{"video only", offerWith("m=video 9 UDP/TLS/RTP/SAVPF 96", "a=rtpmap:96 VP8/90000"), "", errNoAudioMedia},
		{"garbage", "hello", "", errBadOffer},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := chooseCodec(c.offer)
			if c.err != nil {
				if !errors.Is(err, c.err) {
					t.Fatalf("err = %v, want %v", err, c.err)
				}
				return
			}
			if err != nil || got.MimeType != c.mime {
				t.Fatalf("got %q, %v; want %q", got.MimeType, err, c.mime)
			}
		})
	}
}

// FuzzChooseCodec: any offer text yields a codec or a classified error,
// never a panic.
func FuzzChooseCodec(f *testing.F) {
	f.Add(offerWith("m=audio 9 UDP/TLS/RTP/SAVPF 111", "a=rtpmap:111 opus/48000/2"))
	f.Add("v=0\r\nm=audio 0 RTP/AVP\r\n")
	f.Add("v=0\r\no=\r\n")
	f.Fuzz(func(t *testing.T, offer string) {
		c, err := chooseCodec(offer)
		if err == nil && c.MimeType == "" {
			t.Fatal("no codec and no error")
		}
		if err != nil && !errors.Is(err, errBadOffer) && !errors.Is(err, errNoAudioCodec) && !errors.Is(err, errNoAudioMedia) {
			t.Fatalf("unclassified error: %v", err)
		}
	})
}
