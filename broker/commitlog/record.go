package commitlog

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"maps"
	"slices"
)

// Message is one decoded record.
type Message struct {
	Topic       string
	QueueID     uint32
	QueueOffset int64
	Epoch       uint64 // leadership epoch of the queue when stored (fencing, divergence)
	Flags       uint32 // FlagCompressed, FlagReplicated, ...
	BornTime    int64  // unix nanoseconds, set by the producer
	StoreTime   int64  // unix nanoseconds, set by the broker; drives age retention
	BornDC      string
	ID          string
	Keys        []string
	Tag         string
	ShardingKey string
	Properties  map[string]string
	Body        []byte
}

// Message flags.
const (
	FlagCompressed uint32 = 1 << 0 // Body is compressed
	FlagReplicated uint32 = 1 << 1 // stored by a follower, copied from another DC
	// FlagTruncate marks a control record, not a message: its queue is cut
	// back to its QueueOffset (a follower dropping a divergent tail).
	FlagTruncate uint32 = 1 << 2
)

// Frame geometry. See the package documentation for the full layout.
const (
	// HeaderSize is the length of the frame header: u32 length, u32 CRC32C,
	// u8 format version.
	HeaderSize = 9
	// FormatVersion is the version byte of a message record.
	FormatVersion = 1
	// MinRecordSize is the size of a record whose strings, lists and body
	// are all empty.
	MinRecordSize = HeaderSize + fixedFieldsSize + 5*4 + 4 + 4 + 4
	// MaxFrameSize bounds the length field of any frame; a larger length is
	// corruption whatever the options say, so a damaged length can never
	// make a reader allocate an absurd buffer.
	MaxFrameSize = 64 << 20

	fixedFieldsSize = 4 + 4 + 8 + 8 + 8 + 8 // flags .. store time
	storeTimeOffset = HeaderSize + 4 + 4 + 8 + 8 + 8
	markerVersion   = 0xFF
	markerSize      = HeaderSize + 8 // header + newest store time of the segment
	minFrameSize    = markerSize
)

var (
	le         = binary.LittleEndian
	castagnoli = crc32.MakeTable(crc32.Castagnoli)
)

// EncodedSize is the number of bytes AppendRecord appends for m.
func EncodedSize(m *Message) int {
	n := MinRecordSize + len(m.Topic) + len(m.BornDC) + len(m.ID) + len(m.Tag) +
		len(m.ShardingKey) + len(m.Body)
	for _, k := range m.Keys {
		n += 4 + len(k)
	}
	for k, v := range m.Properties {
		n += 8 + len(k) + len(v)
	}
	return n
}

// AppendRecord appends m to dst as one framed record and returns the
// extended slice. Properties are written sorted by name, so equal messages
// encode to equal bytes. The caller keeps the record within MaxRecordSize;
// Append refuses larger ones.
func AppendRecord(dst []byte, m *Message) []byte {
	size := EncodedSize(m)
	start := len(dst)
	dst = slices.Grow(dst, size)
	dst = le.AppendUint32(dst, uint32(size))
	dst = le.AppendUint32(dst, 0) // CRC, filled in below
	dst = append(dst, FormatVersion)
	dst = le.AppendUint32(dst, m.Flags)
	dst = le.AppendUint32(dst, m.QueueID)
	dst = le.AppendUint64(dst, uint64(m.QueueOffset))
	dst = le.AppendUint64(dst, m.Epoch)
	dst = le.AppendUint64(dst, uint64(m.BornTime))
	dst = le.AppendUint64(dst, uint64(m.StoreTime))
	for _, s := range [...]string{m.Topic, m.BornDC, m.ID, m.Tag, m.ShardingKey} {
		dst = appendString(dst, s)
	}
	dst = le.AppendUint32(dst, uint32(len(m.Keys)))
	for _, k := range m.Keys {
		dst = appendString(dst, k)
	}
	dst = appendProperties(dst, m.Properties)
	dst = le.AppendUint32(dst, uint32(len(m.Body)))
	dst = append(dst, m.Body...)
	le.PutUint32(dst[start+4:], crc32.Checksum(dst[start+8:], castagnoli))
	return dst
}

func appendString(dst []byte, s string) []byte {
	dst = le.AppendUint32(dst, uint32(len(s)))
	return append(dst, s...)
}

func appendProperties(dst []byte, props map[string]string) []byte {
	dst = le.AppendUint32(dst, uint32(len(props)))
	if len(props) == 0 {
		return dst
	}
	for _, k := range slices.Sorted(maps.Keys(props)) {
		dst = appendString(dst, k)
		dst = appendString(dst, props[k])
	}
	return dst
}

// appendMarker appends an end-of-segment marker carrying the newest store
// time of the segment it closes (what age retention needs, without reading
// the segment back).
func appendMarker(dst []byte, newest int64) []byte {
	start := len(dst)
	dst = le.AppendUint32(dst, markerSize)
	dst = le.AppendUint32(dst, 0)
	dst = append(dst, markerVersion)
	dst = le.AppendUint64(dst, uint64(newest))
	le.PutUint32(dst[start+4:], crc32.Checksum(dst[start+8:], castagnoli))
	return dst
}

// PeekHeader returns the length field of the frame at b[0:], checked to lie
// between the smallest valid frame and MaxFrameSize. It needs only the first
// four bytes and does not verify the checksum.
func PeekHeader(b []byte) (length int, err error) {
	if len(b) < 4 {
		return 0, io.ErrUnexpectedEOF
	}
	n := le.Uint32(b)
	if n < minFrameSize || n > MaxFrameSize {
		return 0, fmt.Errorf("%w: frame length %d outside [%d, %d]", ErrCorruption, n, minFrameSize, MaxFrameSize)
	}
	return int(n), nil
}

// DecodeRecord decodes the record at b[0:] and returns it with the number of
// bytes it occupies. Errors wrap ErrCorruption (bad length, version, CRC or
// field) or are io.ErrUnexpectedEOF when b is shorter than the declared
// length. The returned message shares no memory with b.
func DecodeRecord(b []byte) (Message, int, error) {
	f, err := checkFrame(b)
	if err != nil {
		return Message{}, 0, err
	}
	if f.kind != frameRecord {
		return Message{}, 0, fmt.Errorf("%w: end-of-segment marker where a record was expected", ErrCorruption)
	}
	var m Message
	fillMessage(b[HeaderSize:f.n], f.bodyOff, &m)
	return m, f.n, nil
}

type frameKind uint8

const (
	frameRecord frameKind = iota + 1
	frameMarker
)

// frame describes a checked frame.
type frame struct {
	n       int       // total length
	kind    frameKind // record or marker
	bodyOff int       // records: offset in the payload of the body's length prefix
}

// checkFrame validates the frame at b[0:] completely — length, checksum,
// version, and for a record the layout of every field. It does not
// allocate unless it fails.
func checkFrame(b []byte) (frame, error) {
	n, err := PeekHeader(b)
	if err != nil {
		return frame{}, err
	}
	if len(b) < n {
		return frame{}, io.ErrUnexpectedEOF
	}
	stored, computed := le.Uint32(b[4:]), crc32.Checksum(b[8:n], castagnoli)
	if stored != computed {
		return frame{}, fmt.Errorf("%w: checksum mismatch (stored %08x, computed %08x)", ErrCorruption, stored, computed)
	}
	switch v := b[8]; {
	case v == FormatVersion && n >= MinRecordSize:
		bodyOff, err := validatePayload(b[HeaderSize:n])
		if err != nil {
			return frame{}, err
		}
		return frame{n: n, kind: frameRecord, bodyOff: bodyOff}, nil
	case v == markerVersion && n == markerSize:
		return frame{n: n, kind: frameMarker}, nil
	default:
		return frame{}, fmt.Errorf("%w: version %d with length %d", ErrCorruption, v, n)
	}
}

// markerTime is the newest store time carried by a checked marker frame.
func markerTime(b []byte) int64 { return int64(le.Uint64(b[HeaderSize:])) }

// recordStoreTime reads the store time of a framed record without decoding it.
func recordStoreTime(rec []byte) int64 { return int64(le.Uint64(rec[storeTimeOffset:])) }

// decoder walks a payload. A failed read records which field overran and
// makes every later read return zero, so callers check bad once at the end.
type decoder struct {
	p   []byte
	off int
	bad string // name of the first field that did not fit
}

func (d *decoder) fixed(field string, size int) []byte {
	if d.bad != "" || len(d.p)-d.off < size {
		d.fail(field)
		return nil
	}
	b := d.p[d.off : d.off+size]
	d.off += size
	return b
}

func (d *decoder) u32(field string) uint32 {
	if b := d.fixed(field, 4); b != nil {
		return le.Uint32(b)
	}
	return 0
}

func (d *decoder) u64(field string) uint64 {
	if b := d.fixed(field, 8); b != nil {
		return le.Uint64(b)
	}
	return 0
}

// bytes reads a u32 length-prefixed field and returns its offset and length.
func (d *decoder) bytes(field string) (off, n int) {
	l := d.u32(field)
	if d.bad != "" || uint64(l) > uint64(len(d.p)-d.off) {
		d.fail(field)
		return 0, 0
	}
	off, d.off = d.off, d.off+int(l)
	return off, int(l)
}

// count reads a u32 element count, refusing one whose elements (each at
// least minElem bytes) could not fit in what is left, so that a damaged
// count cannot make the caller allocate or loop without bound.
func (d *decoder) count(field string, minElem int) int {
	c := d.u32(field)
	if d.bad != "" || uint64(c)*uint64(minElem) > uint64(len(d.p)-d.off) {
		d.fail(field)
		return 0
	}
	return int(c)
}

func (d *decoder) fail(field string) {
	if d.bad == "" {
		d.bad = field
	}
}

func (d *decoder) slice(off, n int) []byte { return d.p[off : off+n] }

// validatePayload checks that every field of a record payload (the bytes
// after the header) lies inside it, that property names are strictly
// ascending (the one canonical encoding) and that nothing trails the body.
// It returns the offset of the body's length prefix.
func validatePayload(p []byte) (int, error) {
	d := decoder{p: p}
	d.fixed("fixed fields", fixedFieldsSize)
	for _, f := range [...]string{"topic", "born dc", "id", "tag", "sharding key"} {
		d.bytes(f)
	}
	for i, n := 0, d.count("key count", 4); i < n; i++ {
		d.bytes("key")
	}
	var prev []byte
	for i, n := 0, d.count("property count", 8); i < n; i++ {
		k := d.slice(d.bytes("property name"))
		d.bytes("property value")
		if i > 0 && d.bad == "" && bytes.Compare(prev, k) >= 0 {
			return 0, fmt.Errorf("%w: property %q out of order", ErrCorruption, k)
		}
		prev = k
	}
	bodyOff := d.off
	d.bytes("body")
	if d.bad != "" {
		return 0, fmt.Errorf("%w: field %s overruns the record", ErrCorruption, d.bad)
	}
	if d.off != len(p) {
		return 0, fmt.Errorf("%w: %d bytes trail the body", ErrCorruption, len(p)-d.off)
	}
	return bodyOff, nil
}

// fillMessage decodes a payload already checked by validatePayload. All
// strings are substrings of one copy of the payload's head, which costs one
// allocation instead of one per string and still shares nothing with p.
func fillMessage(p []byte, bodyOff int, m *Message) {
	d := decoder{p: p}
	m.Flags = d.u32("")
	m.QueueID = d.u32("")
	m.QueueOffset = int64(d.u64(""))
	m.Epoch = d.u64("")
	m.BornTime = int64(d.u64(""))
	m.StoreTime = int64(d.u64(""))
	head := string(p[:bodyOff])
	str := func() string { off, n := d.bytes(""); return head[off : off+n] }
	m.Topic, m.BornDC, m.ID, m.Tag, m.ShardingKey = str(), str(), str(), str(), str()
	if n := d.count("", 4); n > 0 {
		m.Keys = make([]string, n)
		for i := range m.Keys {
			m.Keys[i] = str()
		}
	}
	if n := d.count("", 8); n > 0 {
		m.Properties = make(map[string]string, n)
		for i := 0; i < n; i++ {
			k := str()
			m.Properties[k] = str()
		}
	}
	if off, n := d.bytes(""); n > 0 {
		m.Body = bytes.Clone(d.slice(off, n))
	}
}
