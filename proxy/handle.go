package proxy

import (
	"encoding/base64"
	"encoding/binary"
	"strings"
)

// receipt is what a client's receipt handle encodes: where the message was
// popped (DC, broker name and address, the topic popped, which is the
// group's retry topic for a redelivery) and the broker's own receipt. Any
// proxy can settle a handle another proxy issued.
type receipt struct {
	DC, Broker, Addr, Topic, Handle string
}

const handlePrefix = "r1."

// encode returns the handle: a version prefix, then base64url of the
// length-prefixed fields.
func (r receipt) encode() string {
	var b []byte
	for _, f := range []string{r.DC, r.Broker, r.Addr, r.Topic, r.Handle} {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return handlePrefix + base64.RawURLEncoding.EncodeToString(b)
}

// decodeReceipt is the inverse of encode.
func decodeReceipt(s string) (receipt, error) {
	rest, ok := strings.CutPrefix(s, handlePrefix)
	if !ok {
		return receipt{}, errorf(ErrBadReceiptHandle, "receipt handle %.40q: not issued by a duomq proxy (no %q prefix)", s, handlePrefix)
	}
	b, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil {
		return receipt{}, errorf(ErrBadReceiptHandle, "receipt handle %.40q: %v", s, err)
	}
	var f [5]string
	for i := range f {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return receipt{}, errorf(ErrBadReceiptHandle, "receipt handle %.40q: truncated", s)
		}
		f[i] = string(b[k : k+int(n)])
		b = b[k+int(n):]
	}
	if len(b) != 0 || f[0] == "" || f[1] == "" || f[3] == "" || f[4] == "" {
		return receipt{}, errorf(ErrBadReceiptHandle, "receipt handle %.40q: malformed", s)
	}
	return receipt{DC: f[0], Broker: f[1], Addr: f[2], Topic: f[3], Handle: f[4]}, nil
}
