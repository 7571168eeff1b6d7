#!/usr/bin/env python3
"""Writes the small image files the PNG and CIFAR-10 loaders are tested and fuzzed on.

png/: tiny valid PNGs of several colour types and depths (seeds for the PNG fuzz target).
bad/: truncated.png (cut inside its IDAT chunk), corrupt.png (IDAT holds bytes that are not a
zlib stream, with a correct CRC), crc.png (the IDAT chunk's CRC changed),
partial.bin (two CIFAR-10 records and 100 more bytes), badlabel.bin (second record's label 10).
Deterministic; standard library only. Run from tests/data.
"""
import struct
import zlib


def chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def png(w, h, depth, color, rows, extra=b""):
    """rows: the packed bytes of each row (no filter byte)."""
    raw = b"".join(b"\0" + r for r in rows)
    ihdr = struct.pack(">IIBBBBB", w, h, depth, color, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra +
            chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def gray8(w, h):
    return [bytes((17 * r + 29 * c) % 256 for c in range(w)) for r in range(h)]


def main():
    good = {
        "gray8.png": png(8, 8, 8, 0, gray8(8, 8)),
        "gray1.png": png(8, 2, 1, 0, [b"\xa5", b"\x3c"]),
        "rgba16.png": png(2, 2, 16, 6, [struct.pack(">8H", 0, 65535, 1000, 40000, 5, 6, 7, 65535)] * 2),
        "palette2.png": png(4, 1, 2, 3, [b"\x1b"],
                            chunk(b"PLTE", bytes([255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 9, 9])) +
                            chunk(b"tRNS", b"\x80\x00")),
        "gray_alpha8.png": png(2, 1, 8, 4, [b"\x10\xff\x20\x00"]),
        "rgb8.png": png(2, 2, 8, 2, [b"\x01\x02\x03\x04\x05\x06"] * 2),
    }
    for name, data in good.items():
        with open("png/" + name, "wb") as f:
            f.write(data)

    whole = good["gray8.png"]
    idat = whole.index(b"IDAT")
    with open("bad/truncated.png", "wb") as f:
        f.write(whole[: idat + 4 + 10])
    junk = bytes(range(7, 47))
    corrupt = whole[: idat - 4] + chunk(b"IDAT", junk) + chunk(b"IEND", b"")
    with open("bad/corrupt.png", "wb") as f:
        f.write(corrupt)
    crc = bytearray(whole)
    crc[whole.index(b"IEND") - 5] ^= 0x55  # the last byte of IDAT's CRC
    with open("bad/crc.png", "wb") as f:
        f.write(bytes(crc))

    def record(label, k):
        return bytes([label]) + bytes((k * 31 + j) % 256 for j in range(3072))

    with open("bad/partial.bin", "wb") as f:
        f.write(record(3, 0) + record(9, 1) + bytes(100))
    with open("bad/badlabel.bin", "wb") as f:
        f.write(record(3, 0) + record(10, 1))


if __name__ == "__main__":
    main()
