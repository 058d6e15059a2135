package client

import (
	"fmt"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// zstd encoders and decoders are safe for concurrent EncodeAll/DecodeAll
// and costly to build, so one of each serves the process.
var (
	zstdOnce sync.Once
	zstdEnc  *zstd.Encoder
	zstdDec  *zstd.Decoder
	zstdErr  error
)

// maxDecodedBytes bounds a decompressed body, so a hostile or corrupt frame
// cannot make a consumer allocate without limit.
const maxDecodedBytes = 256 << 20

func zstdCodec() (*zstd.Encoder, *zstd.Decoder, error) {
	zstdOnce.Do(func() {
		zstdEnc, zstdErr = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
		if zstdErr != nil {
			return
		}
		zstdDec, zstdErr = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(maxDecodedBytes))
	})
	return zstdEnc, zstdDec, zstdErr
}

// compressBody returns body compressed and true when body is longer than
// threshold and compression makes it smaller; else body and false.
func compressBody(body []byte, threshold int) ([]byte, bool) {
	if threshold <= 0 || len(body) <= threshold {
		return body, false
	}
	enc, _, err := zstdCodec()
	if err != nil {
		return body, false
	}
	out := enc.EncodeAll(body, make([]byte, 0, len(body)/2))
	if len(out) >= len(body) {
		return body, false
	}
	return out, true
}

// decompressBody reverses compressBody.
func decompressBody(body []byte) ([]byte, error) {
	_, dec, err := zstdCodec()
	if err != nil {
		return nil, err
	}
	out, err := dec.DecodeAll(body, nil)
	if err != nil {
		return nil, fmt.Errorf("decompress body: %w", err)
	}
	return out, nil
}
