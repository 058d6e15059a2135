package commitlog

import (
	"bytes"
	"errors"
	"hash/crc32"
	"io"
	"reflect"
	"strings"
	"testing"
)

func TestRecordRoundTrip(t *testing.T) {
	cases := map[string]*Message{
		"empty":  {},
		"full":   testMsg(7),
		"binary": {Topic: "t", Body: []byte{0, 1, 2, 0xFF}, Flags: FlagCompressed | FlagReplicated},
		"unicode": {Topic: "t", Tag: "标签", Keys: []string{"ключ", ""},
			Properties: map[string]string{"": "empty name", "é": "ü"}},
		"negative times": {Topic: "t", BornTime: -1, StoreTime: -5, QueueOffset: -2, Epoch: ^uint64(0)},
		"many keys":      {Topic: "t", Keys: strings.Split(strings.Repeat("k,", 300), ",")},
		"big body":       {Topic: "t", Body: bytes.Repeat([]byte("x"), 1<<20)},
	}
	for name, m := range cases {
		t.Run(name, func(t *testing.T) {
			b := AppendRecord([]byte("prefix"), m)
			rec := b[len("prefix"):]
			if len(rec) != EncodedSize(m) {
				t.Fatalf("encoded %d bytes, EncodedSize says %d", len(rec), EncodedSize(m))
			}
			if n, err := PeekHeader(rec); err != nil || n != len(rec) {
				t.Fatalf("PeekHeader = %d, %v; want %d", n, err, len(rec))
			}
			got, n, err := DecodeRecord(append(rec, "trailing frame"...))
			if err != nil || n != len(rec) {
				t.Fatalf("DecodeRecord = %d, %v; want %d bytes", n, err, len(rec))
			}
			if !reflect.DeepEqual(normalize(got), normalize(*m)) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, *m)
			}
			if again := AppendRecord(nil, &got); !bytes.Equal(again, rec) {
				t.Fatal("re-encoding the decoded message changed its bytes")
			}
		})
	}
}

// normalize maps empty slices and maps to nil, which encode alike.
func normalize(m Message) Message {
	if len(m.Keys) == 0 {
		m.Keys = nil
	}
	if len(m.Properties) == 0 {
		m.Properties = nil
	}
	if len(m.Body) == 0 {
		m.Body = nil
	}
	return m
}

func TestDecodeDoesNotAlias(t *testing.T) {
	rec := testRec(1)
	m, _, err := DecodeRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	want := normalize(*testMsg(1))
	for i := range rec {
		rec[i] = 0xAA
	}
	if !reflect.DeepEqual(normalize(m), want) {
		t.Fatal("decoded message changed when the input buffer was overwritten")
	}
}

// reseal recomputes the checksum of a record after a test edited it, so
// that the edit is seen by the field checks rather than the CRC.
func reseal(b []byte) []byte {
	le.PutUint32(b[4:], crc32.Checksum(b[8:le.Uint32(b)], castagnoli))
	return b
}

func TestDecodeCorruption(t *testing.T) {
	good := func() []byte { return testRec(3) }
	// topicLen is the offset of the topic's length prefix.
	const topicLen = HeaderSize + fixedFieldsSize
	cases := []struct {
		name    string
		mutate  func(b []byte) []byte
		wantEOF bool
	}{
		{"empty input", func(b []byte) []byte { return nil }, true},
		{"three bytes", func(b []byte) []byte { return b[:3] }, true},
		{"truncated", func(b []byte) []byte { return b[:len(b)-1] }, true},
		{"length below minimum", func(b []byte) []byte { le.PutUint32(b, 8); return b }, false},
		{"length above maximum", func(b []byte) []byte { le.PutUint32(b, MaxFrameSize+1); return b }, false},
		{"length shorter than fields", func(b []byte) []byte { le.PutUint32(b, MinRecordSize); return reseal(b) }, false},
		{"checksum flipped", func(b []byte) []byte { b[5] ^= 1; return b }, false},
		{"body byte flipped", func(b []byte) []byte { b[len(b)-1] ^= 1; return b }, false},
		{"header byte flipped", func(b []byte) []byte { b[20] ^= 1; return b }, false},
		{"unknown version", func(b []byte) []byte { b[8] = 2; return reseal(b) }, false},
		{"marker version", func(b []byte) []byte { b[8] = markerVersion; return reseal(b) }, false},
		{"string overruns", func(b []byte) []byte { le.PutUint32(b[topicLen:], 1<<30); return reseal(b) }, false},
		{"key count absurd", func(b []byte) []byte { return reseal(setKeyCount(b, 1<<31)) }, false},
		{"trailing bytes", func(b []byte) []byte {
			b = append(b, 0, 0, 0, 0)
			le.PutUint32(b, uint32(len(b)))
			return reseal(b)
		}, false},
		{"properties out of order", func(b []byte) []byte {
			return unsortedPropsRecord()
		}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.mutate(good())
			_, _, err := DecodeRecord(b)
			switch {
			case tc.wantEOF && !errors.Is(err, io.ErrUnexpectedEOF):
				t.Fatalf("err = %v, want io.ErrUnexpectedEOF", err)
			case !tc.wantEOF && !errors.Is(err, ErrCorruption):
				t.Fatalf("err = %v, want ErrCorruption", err)
			}
		})
	}
}

// setKeyCount overwrites the key count of a record made by testRec.
func setKeyCount(b []byte, n uint32) []byte {
	d := decoder{p: b[HeaderSize:]}
	d.fixed("", fixedFieldsSize)
	for i := 0; i < 5; i++ {
		d.bytes("")
	}
	le.PutUint32(b[HeaderSize+d.off:], n)
	return b
}

// unsortedPropsRecord encodes two properties in descending order, which
// AppendRecord never does.
func unsortedPropsRecord() []byte {
	b := AppendRecord(nil, &Message{Properties: map[string]string{"a": "2", "b": "1"}})
	// The pairs are "a"="2" then "b"="1"; swap the names.
	i := bytes.Index(b, []byte("a"))
	j := bytes.Index(b, []byte("b"))
	b[i], b[j] = 'b', 'a'
	return reseal(b)
}

func TestPeekHeader(t *testing.T) {
	cases := []struct {
		name string
		b    []byte
		want int
		err  error
	}{
		{"short", []byte{1, 2}, 0, io.ErrUnexpectedEOF},
		{"too small", le.AppendUint32(nil, 4), 0, ErrCorruption},
		{"too big", le.AppendUint32(nil, MaxFrameSize+1), 0, ErrCorruption},
		{"record", testRec(1), len(testRec(1)), nil},
		{"marker", appendMarker(nil, 5), markerSize, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n, err := PeekHeader(tc.b)
			if n != tc.want || !errors.Is(err, tc.err) || (tc.err == nil && err != nil) {
				t.Fatalf("PeekHeader = %d, %v; want %d, %v", n, err, tc.want, tc.err)
			}
		})
	}
}

func TestMarkerFrame(t *testing.T) {
	b := appendMarker(nil, 42)
	f, err := checkFrame(b)
	if err != nil || f.kind != frameMarker || f.n != markerSize || markerTime(b) != 42 {
		t.Fatalf("checkFrame(marker) = %+v, %v", f, err)
	}
	if _, _, err := DecodeRecord(b); !errors.Is(err, ErrCorruption) {
		t.Fatalf("DecodeRecord(marker) err = %v, want ErrCorruption", err)
	}
}

func TestRecordStoreTimeOffset(t *testing.T) {
	m := testMsg(9)
	if got := recordStoreTime(AppendRecord(nil, m)); got != m.StoreTime {
		t.Fatalf("recordStoreTime = %d, want %d", got, m.StoreTime)
	}
}
