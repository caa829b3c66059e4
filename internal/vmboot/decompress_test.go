package vmboot

import (
	"bytes"
	"encoding/binary"
	"os"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/ulikunitz/xz"
)

// x86ish is n deterministic bytes that look enough like x86 code to
// exercise the BCJ filter: E8/E9 calls and jumps with near targets (high
// byte 00 or FF), E8 bytes that are not calls, and filler.
func x86ish(n int) []byte {
	var b []byte
	x := uint32(1)
	for len(b) < n {
		x = x*1664525 + 1013904223
		switch x >> 29 {
		case 0, 1:
			b = binary.LittleEndian.AppendUint32(append(b, 0xe8), uint32(int32(x>>8&0xffff)-0x8000))
		case 2:
			b = binary.LittleEndian.AppendUint32(append(b, 0xe9), uint32(int32(x>>12&0xfff)-0x800))
		case 3:
			b = append(b, 0xe8, byte(x>>8), 0xe8, byte(x>>16), 0x12)
		default:
			b = append(b, byte(x>>16), byte(x>>24), 0x48, 0x89)
		}
	}
	return b[:n]
}

// withSize appends the uncompressed size as the kernel's size_append does.
func withSize(stream []byte, size int) []byte {
	return binary.LittleEndian.AppendUint32(append([]byte{}, stream...), uint32(size))
}

// TestDecompressPayload decodes a payload in each format a bzImage may
// hold, made here with the Go libraries (lz4 in the kernel's legacy frames
// of 8 MiB blocks, and in current frames; zstd; xz), and an xz stream with
// the x86 BCJ filter as the kernel packs it, made once with
// `xz --format=xz --check=crc32 --x86 --lzma2=preset=6` from x86ish(1<<14)
// (testdata/x86ish.xz).
func TestDecompressPayload(t *testing.T) {
	data := x86ish(1 << 16)
	// Over 8 MiB, so the legacy lz4 frame holds more than one block.
	big := bytes.Repeat(x86ish(1<<12), 2400)

	var legacy, frame bytes.Buffer
	for _, c := range []struct {
		buf  *bytes.Buffer
		data []byte
		opts []lz4.Option
	}{{&legacy, big, []lz4.Option{lz4.LegacyOption(true)}}, {&frame, data, nil}} {
		w := lz4.NewWriter(c.buf)
		require.NoError(t, w.Apply(c.opts...))
		_, err := w.Write(c.data)
		require.NoError(t, err)
		require.NoError(t, w.Close())
	}
	require.True(t, bytes.HasPrefix(legacy.Bytes(), magicLZ4Legacy))

	enc, err := zstd.NewWriter(nil)
	require.NoError(t, err)
	zst := enc.EncodeAll(data, nil)

	var xzbuf bytes.Buffer
	w, err := xz.WriterConfig{CheckSum: xz.CRC32}.NewWriter(&xzbuf)
	require.NoError(t, err)
	_, err = w.Write(data)
	require.NoError(t, err)
	require.NoError(t, w.Close())

	bcj, err := os.ReadFile("testdata/x86ish.xz")
	require.NoError(t, err)

	for _, c := range []struct {
		name   string
		stream []byte
		want   []byte
	}{
		{"lz4 legacy", legacy.Bytes(), big},
		{"lz4 frame", frame.Bytes(), data},
		{"zstd", zst, data},
		{"xz", xzbuf.Bytes(), data},
		{"xz x86 BCJ", bcj, x86ish(1 << 14)},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := decompressPayload(withSize(c.stream, len(c.want)))
			require.NoError(t, err)
			assert.True(t, bytes.Equal(c.want, got), "decompressed data differs")

			_, err = decompressPayload(withSize(c.stream, len(c.want)+1))
			assert.ErrorContains(t, err, "its trailer says")
		})
	}

	_, err = decompressPayload(withSize([]byte("BZh91AY&SY"), 1))
	assert.ErrorContains(t, err, "format not handled")
}

// TestUnBCJx86 checks the filter's inverse on calls the filter made
// absolute: at offset 16, E8 with absolute target 0x100 is relative
// 0x100-(16+5).
func TestUnBCJx86(t *testing.T) {
	buf := make([]byte, 32)
	buf[16] = 0xe8
	binary.LittleEndian.PutUint32(buf[17:], 0x100)
	unBCJx86(buf)
	assert.Equal(t, uint32(0x100-21), binary.LittleEndian.Uint32(buf[17:]))
}
