"""The pure strict wire checks (no IO)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gs_hooks.http._strict import ChunkedFramingError, ChunkedScanner, chunked_body_is_strict, head_is_strict

GOOD_BODY = b'4;a=b;c="d e"\r\nwiki\r\n5\r\npedia\r\n0\r\nX-Trailer: v\r\n\r\n'


def test_strict_module_is_pure() -> None:
    path = Path(__file__).parents[2] / "src" / "gs_hooks" / "http" / "_strict.py"
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('strict', {str(path)!r})\n"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        "bad = sorted(m for m in ('anyio', 'h11', 'httpx', 'trio', 'asyncio', 'socket') if m in sys.modules)\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


@pytest.mark.parametrize(
    ("head", "ok"),
    [
        (b"GET / HTTP/1.1\r\nHost: a\r\n\r\nbody\n", True),
        (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", True),
        (b"GET / HTTP/1.1\nHost: a\r\n\r\n", False),
        (b"GET / HTTP/1.1\r\nHost: a\n\n", False),
        (b"GET / HTTP/1.1\r\nHost: a\r\n\n", False),
        (b"GET / HTTP/1.1\r\nHost: a\r\n b\r\n\r\n", False),
        (b"GET / HTTP/1.1\r\nHost: a\r\n\tb\r\n\r\n", False),
        (b"GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", False),
    ],
)
def test_head_is_strict(head: bytes, ok: bool) -> None:
    assert head_is_strict(head) is ok


def test_scanner_gives_the_same_verdict_fed_byte_by_byte() -> None:
    whole = ChunkedScanner(max_body=100)
    whole.feed(GOOD_BODY + b"GET / HTTP/1.1\r\n")
    assert whole.done
    assert whole.consumed == len(GOOD_BODY)
    trickled = ChunkedScanner(max_body=100)
    for i in range(len(GOOD_BODY)):
        assert not trickled.done
        trickled.feed(GOOD_BODY[i : i + 1])
    assert trickled.done
    assert trickled.consumed == len(GOOD_BODY)
    assert chunked_body_is_strict(GOOD_BODY)
    assert not chunked_body_is_strict(GOOD_BODY + b"x")
    assert not chunked_body_is_strict(GOOD_BODY[:-1])


def test_scanner_refuses_an_oversized_chunk_before_its_data() -> None:
    scanner = ChunkedScanner(max_body=1000)
    with pytest.raises(ChunkedFramingError) as info:
        scanner.feed(b"3e9\r\n")  # 1001 bytes announced
    assert info.value.status == 413


def test_scanner_bounds_its_line_buffer() -> None:
    scanner = ChunkedScanner(max_body=1000, max_line=64)
    for _ in range(5):
        scanner.feed(b"1;" + b"a" * 10)  # 60 bytes of an unfinished line: still allowed
    with pytest.raises(ChunkedFramingError, match="too long"):
        scanner.feed(b"a" * 10)


@pytest.mark.parametrize("pieces", [1, 2, 7], ids=["one-read", "two-reads", "seven-reads"])
def test_scanner_bounds_a_line_however_its_bytes_arrive(pieces: int) -> None:
    long_line = b"1;a=" + b"b" * 60_000 + b"\r\n"
    data = long_line + b"x\r\n0\r\n\r\n"
    step = -(-len(long_line) // pieces)
    scanner = ChunkedScanner(max_body=1000)

    def feed_all() -> None:
        for start in range(0, len(data), step):
            scanner.feed(data[start : start + step])

    with pytest.raises(ChunkedFramingError, match="too long"):
        feed_all()


def test_a_line_of_exactly_the_limit_is_accepted_in_one_read_or_trickled() -> None:
    line = b"1;" + b"a" * 62 + b"\r\n"  # 64 bytes before the CRLF
    body = line + b"x\r\n0\r\n\r\n"
    whole = ChunkedScanner(max_body=100, max_line=64)
    whole.feed(body)
    assert whole.done
    trickled = ChunkedScanner(max_body=100, max_line=64)
    for i in range(len(body)):
        trickled.feed(body[i : i + 1])
    assert trickled.done
    with pytest.raises(ChunkedFramingError, match="too long"):
        ChunkedScanner(max_body=100, max_line=63).feed(body)
