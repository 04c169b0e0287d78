"""The sketch's serialized form round-trips, and the vectorized merge equals bin-by-bin."""

from __future__ import annotations

import random
import zlib

from perfmonitor.analytics.sketch import QuantileSketch, merge_serialized


def test_a_sketch_of_only_zeros_round_trips():
    sketch = QuantileSketch()
    sketch.add(0.0)
    sketch.add(0.0)
    back = QuantileSketch.from_bytes(sketch.to_bytes())
    assert back.count == 2 and back.zero_count == 2 and back.quantile(0.75) == 0.0


def test_sketches_stored_with_the_default_zlib_window_still_read():
    """Rows written before sketches were compressed with a small window merge with new ones."""
    rng = random.Random(2)
    sketch = QuantileSketch()
    for _ in range(2000):
        sketch.add(rng.lognormvariate(4, 2))
    new = sketch.to_bytes()
    old = zlib.compress(zlib.decompress(new), 1)  # how earlier versions stored it
    assert new != old and zlib.decompress(new) == zlib.decompress(old)
    assert len(new) <= len(old) * 1.05  # the small window compresses these as well
    assert QuantileSketch.from_bytes(old).bins == QuantileSketch.from_bytes(new).bins == sketch.bins
    merged = merge_serialized([old, new])
    assert merged.count == 2 * sketch.count and merged.quantile(0.9) == sketch.quantile(0.9)


def test_vectorized_merge_equals_merging_one_by_one():
    rng = random.Random(7)
    blobs = []
    expected = QuantileSketch()
    for i in range(300):
        sketch = QuantileSketch()
        for _ in range(rng.randint(0, 50)):
            sketch.add(rng.lognormvariate(5, 1.2))
        if i % 5 == 0:
            sketch.add(0.0)
        if i % 7 == 0:
            sketch.add(12.5, weight=0.5)  # fractional weights serialize as doubles
        blobs.append(sketch.to_bytes())
        expected.merge(QuantileSketch.from_bytes(blobs[-1]))
    merged = merge_serialized(blobs + [b"", None])
    assert merged.count == expected.count and merged.zero_count == expected.zero_count
    assert merged.bins == expected.bins
    assert merged.quantiles((0.5, 0.95)) == expected.quantiles((0.5, 0.95))
    assert merge_serialized([]).count == 0


def test_grouped_merge_equals_per_group_merges_on_both_paths():
    from perfmonitor.analytics.sketch import grouped_views

    rng = random.Random(11)
    for extreme in (False, True):  # True: a key span too wide for the dense table
        n = 200
        groups, blobs, expected = [], [], [QuantileSketch() for _ in range(n)]
        for _ in range(800):
            group = rng.randrange(n)
            sketch = QuantileSketch()
            for _ in range(rng.randint(0, 20)):
                sketch.add(rng.lognormvariate(3, 2))
            if extreme and rng.random() < 0.1:
                sketch.add(rng.choice([1e-90, 1e90]))
            if extreme and rng.random() < 0.05:
                sketch.add(12.5, weight=0.5)  # a doubles payload: the per-sketch path
            groups.append(group)
            blobs.append(sketch.to_bytes())
            expected[group].merge(sketch)
        for view, ref in zip(grouped_views(groups, blobs, n), expected, strict=True):
            assert view.bins == ref.bins and view.count == ref.count
