#!/usr/bin/python3
"""Extract the raw ELF vmlinux from an x86 bzImage (Xen's PV domain builder loads it directly,
which saves the in-guest decompression xl would otherwise do under TCG)."""
import gzip
import lzma
import struct
import subprocess
import sys


def main():
    src, dst = sys.argv[1], sys.argv[2]
    img = open(src, "rb").read()
    if img[0x202:0x206] != b"HdrS":
        sys.exit("%s: not a bzImage" % src)
    setup_sects = img[0x1F1] or 4
    payload_offset, payload_length = struct.unpack_from("<II", img, 0x248)
    start = (setup_sects + 1) * 512 + payload_offset
    payload = img[start:start + payload_length]
    if payload.startswith(b"\xfd7zXZ\x00"):
        out = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(payload)
    elif payload.startswith(b"\x1f\x8b"):
        out = gzip.GzipFile(fileobj=__import__("io").BytesIO(payload)).read()
    elif payload.startswith(b"\x28\xb5\x2f\xfd"):
        out = subprocess.run(["zstd", "-dcq"], input=payload, stdout=subprocess.PIPE,
                             check=True).stdout
    else:
        sys.exit("%s: unknown payload compression %r" % (src, payload[:6]))
    if not out.startswith(b"\x7fELF"):
        sys.exit("%s: payload is not an ELF image" % src)
    with open(dst, "wb") as f:
        f.write(out)


if __name__ == "__main__":
    main()
