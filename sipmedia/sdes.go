package sipmedia

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"github.com/pion/srtp/v3"
)

// SDES is the SRTP keying of one stream negotiated with a=crypto
// (RFC 4568): one suite, the remote's master key and salt (it encrypts
// what it sends with them) and ours.
type SDES struct {
	// Tag is the a=crypto tag, echoed from the offer.
	Tag int
	// Suite is the crypto suite name, e.g. "AES_CM_128_HMAC_SHA1_80".
	Suite string
	// RemoteKey is the remote's master key || master salt.
	RemoteKey []byte
	// RemoteMKI is the MKI value the remote puts in every packet (nil for
	// none), RemoteMKILen bytes long on the wire.
	RemoteMKI []byte
	// RemoteLifetime is the number of packets the remote key may protect
	// (0: the suite's maximum). Packets beyond it are refused.
	RemoteLifetime uint64
	// LocalKey is our master key || master salt (fresh from crypto/rand).
	LocalKey []byte
}

type suiteInfo struct {
	profile         srtp.ProtectionProfile
	keyLen, saltLen int
}

// suites we accept, RFC 4568 §6.2, RFC 6188 and RFC 7714 names.
var suites = map[string]suiteInfo{
	"AES_CM_128_HMAC_SHA1_80": {srtp.ProtectionProfileAes128CmHmacSha1_80, 16, 14},
	"AES_CM_128_HMAC_SHA1_32": {srtp.ProtectionProfileAes128CmHmacSha1_32, 16, 14},
	"AES_256_CM_HMAC_SHA1_80": {srtp.ProtectionProfileAes256CmHmacSha1_80, 32, 14},
	"AES_256_CM_HMAC_SHA1_32": {srtp.ProtectionProfileAes256CmHmacSha1_32, 32, 14},
	"AEAD_AES_128_GCM":        {srtp.ProtectionProfileAeadAes128Gcm, 16, 12},
	"AEAD_AES_256_GCM":        {srtp.ProtectionProfileAeadAes256Gcm, 32, 12},
}

// offerSuites are the suites of our own offers, in order.
var offerSuites = []string{"AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32"}

func newLocalKey(suite string) ([]byte, error) {
	si := suites[suite]
	k := make([]byte, si.keyLen+si.saltLen)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("sipmedia: SRTP key: %w", err)
	}
	return k, nil
}

// localLine renders our a=crypto value.
func (s *SDES) localLine() string {
	return strconv.Itoa(s.Tag) + " " + s.Suite + " inline:" + base64.StdEncoding.EncodeToString(s.LocalKey)
}

// errCrypto explains why one a=crypto line was refused.
var errCrypto = errors.New("unsupported a=crypto")

// parseCrypto parses one a=crypto value: "<tag> <suite> inline:<key||salt
// base64>[|<lifetime>][|<MKI>:<length>] [session params]". Parameters we
// cannot honour (several keys, session parameters other than WSH) are
// refused with the reason, never ignored.
func parseCrypto(text string) (*SDES, error) {
	f := strings.Fields(text)
	if len(f) < 3 {
		return nil, fmt.Errorf("%w: want \"<tag> <suite> inline:<key>\"", errCrypto)
	}
	tag, err := strconv.Atoi(f[0])
	if err != nil || tag < 0 || tag > 999999999 {
		return nil, fmt.Errorf("%w: tag %q", errCrypto, clip(f[0]))
	}
	si, ok := suites[f[1]]
	if !ok {
		return nil, fmt.Errorf("%w: suite %q", errCrypto, clip(f[1]))
	}
	for _, sp := range f[3:] {
		if !strings.HasPrefix(sp, "WSH=") { // window size hint: advisory
			return nil, fmt.Errorf("%w: session parameter %q", errCrypto, clip(sp))
		}
	}
	if strings.Contains(f[2], ";") {
		return nil, fmt.Errorf("%w: several master keys in one line", errCrypto)
	}
	kp, ok := strings.CutPrefix(f[2], "inline:")
	if !ok {
		return nil, fmt.Errorf("%w: key method %q (only inline)", errCrypto, clip(f[2]))
	}
	parts := strings.Split(kp, "|")
	if len(parts) > 3 {
		return nil, fmt.Errorf("%w: key parameters %q", errCrypto, clip(kp))
	}
	key, err := base64.StdEncoding.DecodeString(parts[0])
	if err != nil {
		key, err = base64.RawStdEncoding.DecodeString(parts[0])
	}
	if err != nil || len(key) != si.keyLen+si.saltLen {
		return nil, fmt.Errorf("%w: %s needs a %d-byte base64 key||salt", errCrypto, f[1], si.keyLen+si.saltLen)
	}
	sd := &SDES{Tag: tag, Suite: f[1], RemoteKey: key}
	for _, p := range parts[1:] {
		if v, l, isMKI := strings.Cut(p, ":"); isMKI {
			val, err1 := strconv.ParseUint(v, 10, 64)
			n, err2 := strconv.Atoi(l)
			if err1 != nil || err2 != nil || n < 1 || n > 128 {
				return nil, fmt.Errorf("%w: MKI %q", errCrypto, clip(p))
			}
			mki := make([]byte, n)
			b := new(big.Int).SetUint64(val).Bytes()
			if len(b) > n {
				return nil, fmt.Errorf("%w: MKI value %d does not fit %d bytes", errCrypto, val, n)
			}
			copy(mki[n-len(b):], b)
			sd.RemoteMKI = mki
			continue
		}
		lt, err := parseLifetime(p)
		if err != nil {
			return nil, fmt.Errorf("%w: lifetime %q", errCrypto, clip(p))
		}
		sd.RemoteLifetime = lt
	}
	return sd, nil
}

func parseLifetime(s string) (uint64, error) {
	if e, ok := strings.CutPrefix(s, "2^"); ok {
		n, err := strconv.Atoi(e)
		if err != nil || n < 1 || n > 63 {
			return 0, errCrypto
		}
		return 1 << n, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || v == 0 {
		return 0, errCrypto
	}
	return v, nil
}

// chooseCrypto picks the first a=crypto line we support (offer order is
// the offerer's preference). For an answer (offered != nil) the line must
// carry a tag and suite we offered.
func chooseCrypto(lines []cryptoLine, offered *Offered) (*SDES, error) {
	if len(lines) == 0 {
		return nil, fmt.Errorf("%w: RTP/SAVP without a=crypto (DTLS-SRTP is not supported on SIP legs)", ErrNoCommonCrypto)
	}
	var reasons []string
	for _, l := range lines {
		sd, err := parseCrypto(l.text)
		if err != nil {
			reasons = append(reasons, fmt.Sprintf("line %d: %v", l.line, err))
			continue
		}
		if offered != nil {
			var mine *SDES
			for _, k := range offered.keys {
				if k.Tag == sd.Tag && k.Suite == sd.Suite {
					mine = k
				}
			}
			if mine == nil {
				reasons = append(reasons, fmt.Sprintf("line %d: tag %d %s was not offered", l.line, sd.Tag, sd.Suite))
				continue
			}
			sd.LocalKey = mine.LocalKey
			return sd, nil
		}
		k, err := newLocalKey(sd.Suite)
		if err != nil {
			return nil, err
		}
		sd.LocalKey = k
		return sd, nil
	}
	return nil, fmt.Errorf("%w: %s", ErrNoCommonCrypto, strings.Join(reasons, "; "))
}

// contexts builds the SRTP contexts: one to decrypt the remote's packets
// (with its MKI, when it uses one) and one to encrypt ours. RTP and RTCP
// get separate contexts so that their readers need no common lock.
func (s *SDES) contexts() (rx, tx *srtp.Context, err error) {
	si, ok := suites[s.Suite]
	if !ok {
		return nil, nil, fmt.Errorf("%w: suite %q", errCrypto, s.Suite)
	}
	if len(s.RemoteKey) != si.keyLen+si.saltLen || len(s.LocalKey) != si.keyLen+si.saltLen {
		return nil, nil, fmt.Errorf("%w: key length for %s", errCrypto, s.Suite)
	}
	var opts []srtp.ContextOption
	if len(s.RemoteMKI) > 0 {
		opts = append(opts, srtp.MasterKeyIndicator(s.RemoteMKI))
	}
	opts = append(opts, srtp.SRTPReplayProtection(128), srtp.SRTCPReplayProtection(128))
	rx, err = srtp.CreateContext(s.RemoteKey[:si.keyLen], s.RemoteKey[si.keyLen:], si.profile, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("sipmedia: SRTP receive context: %w", err)
	}
	tx, err = srtp.CreateContext(s.LocalKey[:si.keyLen], s.LocalKey[si.keyLen:], si.profile)
	if err != nil {
		return nil, nil, fmt.Errorf("sipmedia: SRTP send context: %w", err)
	}
	return rx, tx, nil
}
