"""Frames: what a header counts is what a reader takes or skips, record for record."""

from __future__ import annotations

import marshal

from perfmonitor.capture import frames


def record(i: int) -> tuple:
    return ("GET", "/r/", "v", f"/r/{i}/", "", 200, b"\0" * 16, None, "", "", "", None)


def raw(held: object, n: int) -> bytes:
    data = marshal.dumps(held, frames.VERSION)
    return frames.header(len(data), n) + data


def test_frames_of_one_record_and_of_a_chunk_decode_in_order():
    data = frames.encode([record(0)]) + frames.frame([record(1), record(2), record(3)])
    assert frames.count(data) == (4, len(data))
    assert frames.decode(data, 100) == ([record(i) for i in range(4)], len(data), 0)


def test_a_reader_takes_whole_frames_until_it_has_its_limit():
    data = frames.frame([record(0), record(1)]) + frames.frame([record(2), record(3)])
    first = len(frames.frame([record(0), record(1)]))
    assert frames.count(data, 1) == (2, first)
    assert frames.decode(data, 1) == ([record(0), record(1)], first, 0)
    assert frames.decode(data, 3) == ([record(i) for i in range(4)], len(data), 0)


def test_what_is_not_a_record_is_skipped_and_counted_as_its_header_says():
    data = (raw([record(0), 5, record(1)], 3)  # one of three is not a tuple
            + raw([record(2), record(3)], 1)  # more than its header says: only that many
            + raw({"not": "a record"}, 2)  # neither a tuple nor a list
            + frames.header(3, 1) + b"\xff\xff\xff")  # not marshal's format
    records, used, bad = frames.decode(data, 100)
    assert records == [record(0), record(1), record(2)] and used == len(data)
    assert len(records) + bad == frames.count(data)[0] == 7


def test_a_header_no_frame_has_stops_the_count():
    good = frames.frame([record(0)])
    for header in (frames.header(4, 0), frames.header(4, 5)):  # no record; more than bytes
        assert frames.count(good + header + b"abcd") == (1, len(good))
    assert frames.count(good + frames.header(100, 1) + b"cut") == (1, len(good))
