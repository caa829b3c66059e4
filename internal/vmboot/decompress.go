package vmboot

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/ulikunitz/xz/lzma"
)

// Magic numbers of the formats an x86 bzImage's payload comes in.
var (
	magicLZ4Legacy = []byte{0x02, 0x21, 0x4c, 0x18}
	magicLZ4       = []byte{0x04, 0x22, 0x4d, 0x18}
	magicZstd      = []byte{0x28, 0xb5, 0x2f, 0xfd}
	magicXZ        = []byte("\xfd7zXZ\x00")
)

// decompressPayload decompresses a bzImage payload: a stream in one of the
// formats above followed, as the kernel's size_append writes it, by the
// uncompressed size as a little-endian u32, which is checked.
func decompressPayload(payload []byte) ([]byte, error) {
	if len(payload) < 8 {
		return nil, errors.New("payload too short")
	}
	stream, size := payload[:len(payload)-4], binary.LittleEndian.Uint32(payload[len(payload)-4:])
	var out []byte
	var err error
	switch {
	case bytes.HasPrefix(stream, magicLZ4Legacy), bytes.HasPrefix(stream, magicLZ4):
		// lz4 reads the kernel's legacy frames (lz4 -l: 8 MiB blocks, no
		// end mark) as well as current ones.
		out, err = io.ReadAll(lz4.NewReader(bytes.NewReader(stream)))
		err = wrap("lz4", err)
	case bytes.HasPrefix(stream, magicZstd):
		var d *zstd.Decoder
		if d, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(1<<31)); err == nil {
			out, err = d.DecodeAll(stream, make([]byte, 0, size))
			d.Close()
		}
		err = wrap("zstd", err)
	case bytes.HasPrefix(stream, magicXZ):
		out, err = decodeXZ(stream)
		err = wrap("xz", err)
	default:
		return nil, fmt.Errorf("payload compressed in a format not handled (% x)", stream[:4])
	}
	if err != nil {
		return nil, err
	}
	if uint32(len(out)) != size {
		return nil, fmt.Errorf("payload decompressed to %d bytes, its trailer says %d", len(out), size)
	}
	return out, nil
}

func wrap(format string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", format, err)
}

// decodeXZ decodes the first block of an xz stream as the kernel's
// scripts/xz_wrap.sh writes it: LZMA2, on x86 after the x86 BCJ filter
// (which github.com/ulikunitz/xz's own reader refuses, so the container is
// read here and only the LZMA2 data is left to it). The block's CRC32 is
// checked when it has one.
func decodeXZ(stream []byte) ([]byte, error) {
	// Stream header: magic, flags (0, check type), CRC32 of the flags.
	if len(stream) < 12+8 {
		return nil, errors.New("stream too short")
	}
	check := stream[7] & 0x0f
	if crc32.ChecksumIEEE(stream[6:8]) != binary.LittleEndian.Uint32(stream[8:12]) {
		return nil, errors.New("stream header CRC32 mismatch")
	}
	r := stream[12:]
	// Block header: size/4-1, flags, optional sizes, filter flags, padding, CRC32.
	hsize := (int(r[0]) + 1) * 4
	if r[0] == 0 || hsize > len(r) {
		return nil, errors.New("no block")
	}
	hdr := r[:hsize]
	if crc32.ChecksumIEEE(hdr[:hsize-4]) != binary.LittleEndian.Uint32(hdr[hsize-4:]) {
		return nil, errors.New("block header CRC32 mismatch")
	}
	flags := hdr[1]
	p := hdr[2 : hsize-4]
	vli := func() uint64 {
		var v uint64
		for i := 0; i < 9 && len(p) > 0; i++ {
			b := p[0]
			p = p[1:]
			v |= uint64(b&0x7f) << (7 * i)
			if b&0x80 == 0 {
				return v
			}
		}
		p = nil
		return v
	}
	if flags&0x40 != 0 {
		vli() // compressed size
	}
	if flags&0x80 != 0 {
		vli() // uncompressed size
	}
	var bcj bool
	var dictCap int
	for i := 0; i <= int(flags&3); i++ {
		id, n := vli(), vli()
		if uint64(len(p)) < n {
			return nil, errors.New("block header cut short")
		}
		props := p[:n]
		p = p[n:]
		switch {
		case id == 0x04 && (n == 0 || n == 4 && binary.LittleEndian.Uint32(props) == 0):
			bcj = true
		case id == 0x21 && n == 1 && props[0] <= 40:
			if props[0] == 40 {
				dictCap = 1<<32 - 1
			} else {
				dictCap = (2 | int(props[0]&1)) << (props[0]/2 + 11)
			}
		default:
			return nil, fmt.Errorf("filter %#x (%d bytes of properties) not handled", id, n)
		}
	}
	if dictCap == 0 {
		return nil, errors.New("block without an LZMA2 filter")
	}
	lr, err := lzma.Reader2Config{DictCap: max(dictCap, lzma.MinDictCap)}.NewReader2(bytes.NewReader(r[hsize:]))
	if err != nil {
		return nil, err
	}
	out, err := io.ReadAll(lr)
	if err != nil {
		return nil, err
	}
	if bcj {
		unBCJx86(out)
	}
	if check == 1 {
		// The CRC32 sits after the LZMA2 data and its padding to 4 bytes,
		// at the block's end; the index follows. Find it from the index
		// at the stream's end instead of guessing where LZMA2 stopped.
		if sum, ok := xzBlockCRC32(stream); ok && sum != crc32.ChecksumIEEE(out) {
			return nil, errors.New("block CRC32 mismatch")
		}
	}
	return out, nil
}

// xzBlockCRC32 returns the CRC32 check of the only block of a CRC32-checked
// xz stream: the stream footer says where the index starts, the block's
// check is the 4 bytes before it.
func xzBlockCRC32(stream []byte) (uint32, bool) {
	// Footer: CRC32, backward size, flags, "YZ".
	n := len(stream)
	if n < 12+12 || string(stream[n-2:]) != "YZ" {
		return 0, false
	}
	index := n - 12 - (int(binary.LittleEndian.Uint32(stream[n-8:]))+1)*4
	if index < 12+4 || stream[index] != 0 || stream[index+1] != 1 {
		return 0, false // not a one-block index
	}
	return binary.LittleEndian.Uint32(stream[index-4:]), true
}

// unBCJx86 undoes the xz x86 BCJ filter in place (start offset 0): the
// filter turned the relative targets of E8/E9 calls and jumps into absolute
// ones. A port of xz-embedded's bcj_x86 for one buffer holding the whole
// stream.
func unBCJx86(buf []byte) {
	maskToAllowed := [8]bool{true, true, true, false, true, false, false, false}
	maskToBitNum := [8]uint32{0, 1, 2, 2, 3, 3, 3, 3}
	msbyte := func(b byte) bool { return b == 0x00 || b == 0xff }
	if len(buf) <= 4 {
		return
	}
	size := len(buf) - 4
	prevPos := -1
	var prevMask uint32
	for i := 0; i < size; i++ {
		if buf[i]&0xfe != 0xe8 {
			continue
		}
		d := i - prevPos
		if d > 3 {
			prevMask = 0
		} else {
			prevMask = (prevMask << (d - 1)) & 7
			if prevMask != 0 {
				b := buf[i+4-int(maskToBitNum[prevMask])]
				if !maskToAllowed[prevMask] || msbyte(b) {
					prevPos = i
					prevMask = prevMask<<1 | 1
					continue
				}
			}
		}
		prevPos = i
		if !msbyte(buf[i+4]) {
			prevMask = prevMask<<1 | 1
			continue
		}
		src := binary.LittleEndian.Uint32(buf[i+1:])
		var dest uint32
		for {
			dest = src - uint32(i+5)
			if prevMask == 0 {
				break
			}
			j := maskToBitNum[prevMask] * 8
			if !msbyte(byte(dest >> (24 - j))) {
				break
			}
			src = dest ^ (1<<(32-j) - 1)
		}
		dest &= 0x01ffffff
		dest |= -(dest & 0x01000000)
		binary.LittleEndian.PutUint32(buf[i+1:], dest)
		i += 4
	}
}
