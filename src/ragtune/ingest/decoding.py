"""Reading a file as text, turning every way it can be unreadable into one short reason."""

from __future__ import annotations

import codecs
import os
from pathlib import Path

from ragtune.ingest.base import SkipFile

BINARY_SNIFF_BYTES = 8192

# Longest BOMs first: the UTF-32 LE BOM starts with the UTF-16 LE one.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def read_bytes(path: Path) -> bytes:
    """The file's bytes, or SkipFile("unreadable (...)")."""
    try:
        return path.read_bytes()
    except PermissionError:
        raise SkipFile("unreadable (permission denied)") from None
    except IsADirectoryError:
        raise SkipFile("unreadable (is a directory)") from None
    except OSError as exc:
        raise SkipFile(f"unreadable ({exc.strerror or exc})") from None


def decode_text(data: bytes) -> str:
    """Decode UTF-8 (BOM optional) or BOM-marked UTF-16/32; SkipFile for binary, invalid or empty input."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                text = data.decode(encoding)
            except UnicodeDecodeError as exc:
                raise SkipFile(f"not valid {encoding.upper()} (error at byte offset {exc.start})") from None
            break
    else:
        if b"\x00" in data[:BINARY_SNIFF_BYTES]:
            raise SkipFile("binary file")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad = data[exc.start]
            raise SkipFile(f"not valid UTF-8 (byte 0x{bad:02x} at offset {exc.start})") from None
    text = text.lstrip("\ufeff")
    if not text.strip():
        raise SkipFile("empty")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_text(path: Path) -> str:
    """Read a text file: UTF-8 (with or without BOM) or UTF-16/32 with BOM, LF line endings."""
    return decode_text(read_bytes(path))


def printable_name(name: str) -> str:
    r"""A file name as valid text: bytes that are not UTF-8 (which os.fsdecode turns into lone surrogates) become
    backslash escapes, so the file b"bad\xff.txt" gets the id bad\xff.txt (a backslash, then "xff"); a valid
    name is returned unchanged.

    Document ids, sources and titles come from file names; a lone surrogate in one cannot be encoded (hashed,
    written as JSON, printed) and would stop the whole ingest instead of naming that one file oddly."""
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        pass
    try:
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # surrogates that did not come from undecodable bytes
        return name.encode("utf-8", "backslashreplace").decode("utf-8")


def humanize_stem(path: str | os.PathLike[str]) -> str:
    """'leave_policy-2024.md' -> 'Leave policy 2024': a title for files that do not carry one."""
    stem = printable_name(Path(path).stem).replace("_", " ").replace("-", " ")
    stem = " ".join(stem.split())
    return stem[:1].upper() + stem[1:] if stem else printable_name(Path(path).name)
