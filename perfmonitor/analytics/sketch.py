"""Mergeable quantile sketch with 1 % relative accuracy (DDSketch semantics).

The value-to-bucket mapping is ddsketch's ``LogarithmicMapping``, which carries
the accuracy guarantee; the bins are a sparse dict so that a sketch costs memory
only for the buckets it uses, merges are a dict update and the sketch
serializes to a compact byte string stored in ``MetricRollup.sketch``.

Values at or below zero land in a zero bucket (durations, sizes and CLS are
never negative; the collect API rejects negatives before they get here).
"""

from __future__ import annotations

import math
import struct
import zlib
from array import array
from collections.abc import Iterable

import numpy as np
from ddsketch.mapping import LogarithmicMapping

RELATIVE_ACCURACY = 0.01
_MAPPING = LogarithmicMapping(RELATIVE_ACCURACY)
_MIN_POSITIVE = _MAPPING.min_possible
_key = _MAPPING.key
_value = _MAPPING.value

_FORMAT_VERSION = 1
_HEADER = struct.Struct("<BBdI")  # version, flags, zero_count, bin count
_FLAG_INTEGER_COUNTS = 1


def compress(payload: bytes) -> bytes:
    """A serialized sketch as stored: a zlib stream that ``zlib.decompress`` reads.

    A sketch is a few KiB at most. ``zlib.compress`` sets up a 32 KiB window and
    its 256 KiB of state for each call, which costs ~55 µs to allocate and fault in
    (the flusher serializes a dozen sketches a second); a 2 KiB window and a 4 KiB
    hash table cost ~6 µs and compress these payloads to the same size.
    """
    packer = zlib.compressobj(1, zlib.DEFLATED, 11, 5)
    return packer.compress(payload) + packer.flush()


class QuantileSketch:
    __slots__ = ("bins", "zero_count", "count")

    def __init__(self) -> None:
        self.bins: dict[int, float] = {}
        self.zero_count = 0.0
        self.count = 0.0

    def add(self, value: float, weight: float = 1.0) -> None:
        if value > _MIN_POSITIVE:
            key = _key(value)
            bins = self.bins
            bins[key] = bins.get(key, 0.0) + weight
        else:
            self.zero_count += weight
        self.count += weight

    def add_many(self, values: Iterable[float]) -> None:
        bins = self.bins
        zero = 0.0
        n = 0
        for value in values:
            n += 1
            if value > _MIN_POSITIVE:
                key = _key(value)
                bins[key] = bins.get(key, 0.0) + 1.0
            else:
                zero += 1.0
        self.zero_count += zero
        self.count += n

    def merge(self, other: QuantileSketch) -> None:
        bins = self.bins
        for key, weight in other.bins.items():
            bins[key] = bins.get(key, 0.0) + weight
        self.zero_count += other.zero_count
        self.count += other.count

    def quantile(self, q: float) -> float | None:
        """Value at quantile q (0..1), within 1 % of the exact value; None when empty."""
        if self.count <= 0 or not 0.0 <= q <= 1.0:
            return None
        rank = q * (self.count - 1)
        if rank < self.zero_count:
            return 0.0
        running = self.zero_count
        keys = sorted(self.bins)
        for key in keys:
            running += self.bins[key]
            if running > rank:
                return _value(key)
        return _value(keys[-1])

    def quantiles(self, qs: Iterable[float]) -> dict[float, float | None]:
        """Several quantiles in one pass over the sorted bins."""
        wanted = sorted(set(qs))
        result: dict[float, float | None] = {q: None for q in wanted}
        if self.count <= 0:
            return result
        keys = sorted(self.bins)
        running = self.zero_count
        index = 0
        for q in wanted:
            rank = q * (self.count - 1)
            if rank < self.zero_count:
                result[q] = 0.0
                continue
            while index < len(keys) and running + self.bins[keys[index]] <= rank:
                running += self.bins[keys[index]]
                index += 1
            result[q] = _value(keys[min(index, len(keys) - 1)]) if keys else 0.0
        return result

    def count_at_most(self, threshold: float) -> float:
        """Approximate number of values <= threshold (bucket resolution)."""
        if threshold < 0:
            return 0.0
        total = self.zero_count
        if threshold <= _MIN_POSITIVE:
            return total
        limit = _key(threshold)
        return total + sum(w for k, w in self.bins.items() if k <= limit)

    def excess_over(self, threshold: float) -> float:
        """Approximate sum of (value - threshold) over values above threshold.

        "Time spent beyond the threshold": what the insights call time lost.
        """
        if threshold < 0:
            threshold = 0.0
        limit = _key(threshold) if threshold > _MIN_POSITIVE else None
        total = 0.0
        for key, weight in self.bins.items():
            if limit is None or key > limit:
                total += weight * max(0.0, _value(key) - threshold)
        return total

    def to_bytes(self) -> bytes:
        keys = sorted(self.bins)
        counts = [self.bins[k] for k in keys]
        integer = all(c.is_integer() and c < 2**32 for c in counts)
        deltas = array("i", (k - p for k, p in zip(keys, [0, *keys][: len(keys)], strict=True)))
        count_array = array("I", (int(c) for c in counts)) if integer else array("d", counts)
        header = _HEADER.pack(
            _FORMAT_VERSION, _FLAG_INTEGER_COUNTS if integer else 0, self.zero_count, len(keys)
        )
        return compress(header + deltas.tobytes() + count_array.tobytes())

    @classmethod
    def from_bytes(cls, data: bytes | memoryview | None) -> QuantileSketch:
        sketch = cls()
        if not data:
            return sketch
        raw = zlib.decompress(bytes(data))
        version, flags, zero_count, n = _HEADER.unpack_from(raw)
        if version != _FORMAT_VERSION:
            raise ValueError(f"unknown sketch format {version}")
        offset = _HEADER.size
        deltas = array("i")
        deltas.frombytes(raw[offset : offset + 4 * n])
        offset += 4 * n
        counts = array("I" if flags & _FLAG_INTEGER_COUNTS else "d")
        counts.frombytes(raw[offset : offset + counts.itemsize * n])
        key = 0
        bins = sketch.bins
        total = zero_count
        for delta, weight in zip(deltas, counts, strict=True):
            key += delta
            bins[key] = float(weight)
            total += weight
        sketch.zero_count = zero_count
        sketch.count = float(total)
        return sketch

    def __len__(self) -> int:
        return int(self.count)

    def __repr__(self) -> str:
        return f"<QuantileSketch n={self.count:g} bins={len(self.bins)}>"


def merge_serialized(blobs: Iterable[bytes | memoryview | None]) -> QuantileSketch:
    """One sketch from many serialized ones, merged with numpy.

    Query windows merge hundreds or thousands of rollup sketches; decoding each
    into a dict and merging bin by bin in Python costs ~0.4 µs per bin, which is
    most of a dashboard's server time. Here every blob is decompressed and viewed
    as arrays (no per-bin Python work) and the bins of all of them are summed in
    one ``bincount``.
    """
    delta_parts: list[np.ndarray] = []
    count_parts: list[np.ndarray] = []
    lengths: list[int] = []
    zero = 0.0
    frombuffer = np.frombuffer
    for blob in blobs:
        if not blob:
            continue
        raw = zlib.decompress(blob)
        version, flags, zero_count, n = _HEADER.unpack_from(raw)
        if version != _FORMAT_VERSION:
            raise ValueError(f"unknown sketch format {version}")
        zero += zero_count
        if n == 0:
            continue
        offset = _HEADER.size
        delta_parts.append(frombuffer(raw, dtype="<i4", count=n, offset=offset))
        dtype = "<u4" if flags & _FLAG_INTEGER_COUNTS else "<f8"
        count_parts.append(frombuffer(raw, dtype=dtype, count=n, offset=offset + 4 * n))
        lengths.append(n)
    merged = QuantileSketch()
    merged.zero_count = zero
    if not delta_parts:
        merged.count = zero
        return merged
    # Keys are delta-encoded per blob: one running sum over all blobs, then
    # subtract what the blobs before each one contributed.
    running = np.cumsum(np.concatenate(delta_parts), dtype=np.int64)
    ends = np.cumsum(lengths)
    bases = np.concatenate(([0], running[ends[:-1] - 1]))
    keys = running - np.repeat(bases, lengths)
    weights = np.concatenate([part.astype(np.float64) for part in count_parts]) \
        if len({p.dtype for p in count_parts}) > 1 else np.concatenate(count_parts)
    low = int(keys.min())
    sums = np.bincount(keys - low, weights=weights.astype(np.float64, copy=False))
    present = np.nonzero(sums)[0]
    merged.bins = dict(zip((present + low).tolist(), sums[present].tolist(), strict=True))
    merged.count = zero + float(sums.sum())
    return merged


def is_finite_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


_VALUE_FACTOR = 2.0 / (1 + _MAPPING.gamma)
_MULTIPLIER = _MAPPING._multiplier


class SketchView:
    """A read-only merged sketch as sorted numpy arrays: what queries read.

    Merging and reading thousands of rollup sketches per dashboard render is
    the query layer's hot loop; sorted arrays make a quantile a binary search
    instead of a sort, and a merge one ``bincount``. Same answers as
    :class:`QuantileSketch` (same keys, same rank rule).
    """

    __slots__ = ("keys", "weights", "zero_count", "count", "_cumulative")

    def __init__(self, keys: np.ndarray, weights: np.ndarray, zero_count: float) -> None:
        self.keys = keys
        self.weights = weights
        self.zero_count = float(zero_count)
        self._cumulative: np.ndarray | None = None
        self.count = self.zero_count + float(weights.sum()) if len(weights) else self.zero_count

    @classmethod
    def from_blobs(cls, blobs: list[bytes]) -> SketchView:
        if len(blobs) == 1:
            return cls._from_one(blobs[0])
        return grouped_views([0] * len(blobs), blobs, 1)[0]

    @classmethod
    def _from_one(cls, blob: bytes) -> SketchView:
        raw = zlib.decompress(blob)
        version, flags, zero_count, n = _HEADER.unpack_from(raw)
        if version != _FORMAT_VERSION:
            raise ValueError(f"unknown sketch format {version}")
        offset = _HEADER.size
        keys = np.cumsum(np.frombuffer(raw, dtype="<i4", count=n, offset=offset),
                         dtype=np.int64)
        dtype = "<u4" if flags & _FLAG_INTEGER_COUNTS else "<f8"
        weights = np.frombuffer(raw, dtype=dtype, count=n, offset=offset + 4 * n)
        return cls(keys, weights.astype(np.float64), zero_count)

    @classmethod
    def from_sketch(cls, sketch: QuantileSketch) -> SketchView:
        keys = np.array(sorted(sketch.bins), dtype=np.int64)
        weights = np.array([sketch.bins[k] for k in keys.tolist()], dtype=np.float64)
        return cls(keys, weights, sketch.zero_count)

    @property
    def bins(self) -> dict[int, float]:
        return dict(zip(self.keys.tolist(), self.weights.tolist(), strict=True))

    def _cum(self) -> np.ndarray:
        if self._cumulative is None:
            self._cumulative = np.cumsum(self.weights) + self.zero_count
        return self._cumulative

    def quantiles(self, qs: Iterable[float]) -> dict[float, float | None]:
        wanted = sorted(set(qs))
        if self.count <= 0:
            return {q: None for q in wanted}
        result: dict[float, float | None] = {}
        cum = self._cum()
        last = len(self.keys) - 1
        for q in wanted:
            if not 0.0 <= q <= 1.0:
                result[q] = None
                continue
            rank = q * (self.count - 1)
            if rank < self.zero_count or last < 0:
                result[q] = 0.0
                continue
            index = min(int(np.searchsorted(cum, rank, side="right")), last)
            result[q] = _value(int(self.keys[index]))
        return result

    def quantile(self, q: float) -> float | None:
        return self.quantiles((q,))[q]

    def count_at_most(self, threshold: float) -> float:
        if threshold < 0:
            return 0.0
        if threshold <= _MIN_POSITIVE or not len(self.keys):
            return self.zero_count
        index = int(np.searchsorted(self.keys, _key(threshold), side="right"))
        return float(self._cum()[index - 1]) if index else self.zero_count

    def excess_over(self, threshold: float) -> float:
        threshold = max(threshold, 0.0)
        if not len(self.keys):
            return 0.0
        start = int(np.searchsorted(self.keys, _key(threshold), side="right")) \
            if threshold > _MIN_POSITIVE else 0
        values = np.power(2.0, self.keys[start:] / _MULTIPLIER) * _VALUE_FACTOR
        return float((self.weights[start:] * np.maximum(values - threshold, 0.0)).sum())

    def __len__(self) -> int:
        return int(self.count)

    def __repr__(self) -> str:
        return f"<SketchView n={self.count:g} bins={len(self.keys)}>"


_KEY_BITS = 22  # keys of any float64 at 1 % accuracy span < 2**17; room to spare


def _split_payloads(payloads: list[bytes], lengths: list[int], integer_counts: bool,
                    header: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Key deltas and counts of many decompressed sketches.

    With integer counts (every rollup sketch) all payloads are joined and both
    arrays are gathered with two vectorized takes instead of two numpy calls
    per sketch, which is most of the per-row cost of a long window.
    """
    if not payloads:
        return [], []
    if not integer_counts:
        keys, counts = [], []
        for raw, n in zip(payloads, lengths, strict=True):
            keys.append(np.frombuffer(raw, dtype="<i4", count=n, offset=header))
            flags = raw[1]
            dtype = "<u4" if flags & _FLAG_INTEGER_COUNTS else "<f8"
            counts.append(np.frombuffer(raw, dtype=dtype, count=n, offset=header + 4 * n)
                          .astype(np.float64))
        return keys, counts
    # Without their headers the payloads are whole 4-byte words: keys then counts.
    words = np.frombuffer(b"".join([raw[header:] for raw in payloads]), dtype="<i4")
    per_blob = np.asarray(lengths, dtype=np.int64)
    total = int(per_blob.sum())
    first = np.concatenate(([0], np.cumsum(per_blob)[:-1]))
    # Blob i's keys start at word 2 * first[i]: skip every earlier blob's keys and counts.
    key_at = np.arange(total, dtype=np.int64) + np.repeat(first, per_blob)
    keys = words[key_at]
    counts = words[key_at + np.repeat(per_blob, per_blob)].view("<u4")
    return [keys], [counts]


def _decode_grouped(groups: list[int], blobs: list[bytes], n_groups: int,
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[float]]:
    """(owner group, key, weight) of every bin of every blob, and zero counts per group."""
    zeros = [0.0] * n_groups
    decompress = zlib.decompress
    unpack = _HEADER.unpack_from
    header = _HEADER.size
    payloads: list[bytes] = []
    lengths: list[int] = []
    owners: list[int] = []
    integer_counts = True
    for group, blob in zip(groups, blobs, strict=True):
        raw = decompress(blob)
        version, flags, zero_count, n = unpack(raw)
        if version != _FORMAT_VERSION:
            raise ValueError(f"unknown sketch format {version}")
        if zero_count:
            zeros[group] += zero_count
        if n == 0:
            continue
        integer_counts = integer_counts and bool(flags & _FLAG_INTEGER_COUNTS)
        payloads.append(raw)
        lengths.append(n)
        owners.append(group)
    if not payloads:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, np.empty(0), zeros
    key_parts, count_parts = _split_payloads(payloads, lengths, integer_counts, header)
    running = np.cumsum(np.concatenate(key_parts), dtype=np.int64)
    ends = np.cumsum(lengths)
    keys = running - np.repeat(np.concatenate(([0], running[ends[:-1] - 1])), lengths)
    weights = np.concatenate(count_parts).astype(np.float64, copy=False)
    owner = np.repeat(np.asarray(owners, dtype=np.int64), lengths)
    return owner, keys, weights, zeros


_DENSE_CELLS = 4_000_000


def grouped_views(groups: list[int], blobs: list[bytes], n_groups: int) -> list[SketchView]:
    """One merged SketchView per group id (0..n_groups-1) from (group, blob) pairs.

    Decodes every blob once and merges all groups together, instead of one
    numpy round trip per group: a trend of 720 buckets costs one pass. Bins
    are summed into a dense (group x key range) table with one ``bincount``
    when that table is small (it is: keys of real data span a few hundred),
    else through a sort.
    """
    owner, keys, weights, zeros = _decode_grouped(groups, blobs, n_groups)
    if not len(keys):
        return [SketchView(np.empty(0, dtype=np.int64), np.empty(0), zeros[g])
                for g in range(n_groups)]
    low = int(keys.min())
    span = int(keys.max()) - low + 1
    if n_groups * span <= _DENSE_CELLS:
        table = np.bincount(owner * span + (keys - low), weights=weights,
                            minlength=n_groups * span).reshape(n_groups, span)
        views = []
        for g in range(n_groups):
            row = table[g]
            present = np.flatnonzero(row)
            views.append(SketchView(present + low, row[present], zeros[g]))
        return views
    composite = (owner << _KEY_BITS) | (keys - low)
    unique, inverse = np.unique(composite, return_inverse=True)
    sums = np.bincount(inverse.ravel(), weights=weights)
    owner_of = unique >> _KEY_BITS
    merged_keys = (unique & ((1 << _KEY_BITS) - 1)) + low
    bounds = np.searchsorted(owner_of, np.arange(n_groups + 1)).tolist()
    return [SketchView(merged_keys[bounds[g]:bounds[g + 1]], sums[bounds[g]:bounds[g + 1]],
                       zeros[g]) for g in range(n_groups)]


def grouped_quantiles(groups: list[int], blobs: list[bytes], n_groups: int,
                      qs: tuple[float, ...]) -> dict[float, list[float | None]]:
    """Quantiles of every group at once: {q: [value per group, None when empty]}.

    For trends: hundreds of buckets, a few quantiles each, no per-bucket object.
    Same rank rule and values as :meth:`QuantileSketch.quantiles`.
    """
    owner, keys, weights, zero_list = _decode_grouped(groups, blobs, n_groups)
    zeros = np.asarray(zero_list, dtype=np.float64)
    if not len(keys):
        return {q: [0.0 if z > 0 else None for z in zero_list] for q in qs}
    low = int(keys.min())
    span = int(keys.max()) - low + 1
    if n_groups * span > _DENSE_CELLS:
        views = grouped_views(groups, blobs, n_groups)
        return {q: [v.quantile(q) for v in views] for q in qs}
    table = np.bincount(owner * span + (keys - low), weights=weights,
                        minlength=n_groups * span).reshape(n_groups, span)
    cum = np.cumsum(table, axis=1) + zeros[:, None]
    counts = cum[:, -1]
    values_of_index = np.power(2.0, (np.arange(span) + low) / _MULTIPLIER) * _VALUE_FACTOR
    out: dict[float, list[float | None]] = {}
    for q in qs:
        rank = q * (counts - 1)
        index = np.minimum((cum > rank[:, None]).argmax(axis=1), span - 1)
        values = np.where(rank < zeros, 0.0, values_of_index[index])
        out[q] = [None if c <= 0 else float(v) for c, v in zip(counts, values, strict=True)]
    return out


# -- building many sketches at once (the flusher) ------------------------------------------

_LOG_2 = math.log(2.0)  # math.log(x, 2), which the mapping uses, divides by this
# numpy's log and the C library's may differ in the last bit; a value whose scaled log is
# this close to an integer could land in the neighbouring bucket, so the mapping decides.
_BOUNDARY = 1e-9


def bulk_keys(values: np.ndarray) -> np.ndarray:
    """``_MAPPING.key`` of every value (all finite and above the zero bucket), bit for bit.

    Same operations in the same order as ``LogarithmicMapping.key``: ``log(v) / log(2)``
    times the multiplier, then the ceiling.
    """
    scaled = np.log(values) / _LOG_2 * _MULTIPLIER
    keys = np.ceil(scaled).astype(np.int64)
    near = np.abs(scaled - np.rint(scaled)) <= _BOUNDARY * np.maximum(np.abs(scaled), 1.0)
    if near.any():  # few distinct values (1.0 is the common one): one mapping call each
        distinct, inverse = np.unique(values[near], return_inverse=True)
        keys[near] = np.array([_key(v) for v in distinct.tolist()], dtype=np.int64)[inverse]
    return keys


def encode_many(owners: np.ndarray, values: np.ndarray, weights: np.ndarray | None,
                n: int) -> list[bytes]:
    """``to_bytes()`` of n sketches at once: sketch i holds the values whose owner is i.

    The result is byte for byte what adding each (value, weight) to a
    :class:`QuantileSketch` and serializing it gives (with integral weights), for a
    fraction of the cost: keys are computed and summed per (sketch, key) in a few
    vectorized passes instead of a ``math.log`` and a dict update per value. Values
    must be finite.
    """
    positive = values > _MIN_POSITIVE
    zero_weights = None if weights is None else weights[~positive]
    zeros = np.bincount(owners[~positive], weights=zero_weights, minlength=n).astype(np.float64)
    keys = bulk_keys(values[positive])
    owners = owners[positive]
    if weights is not None:
        weights = weights[positive]
    bin_owner, bin_key, bin_weight = _sum_bins(owners, keys, weights, n)
    bounds = np.searchsorted(bin_owner, np.arange(n + 1)).tolist()
    # Keys are delta-encoded per sketch: the first bin of each sketch stores its key.
    deltas = np.empty_like(bin_key)
    if len(bin_key):
        deltas[0] = bin_key[0]
        deltas[1:] = bin_key[1:] - bin_key[:-1]
        firsts = np.asarray(bounds[:-1], dtype=np.int64)
        firsts = firsts[firsts < len(bin_key)]
        deltas[firsts] = bin_key[firsts]
    delta_bytes = deltas.astype("<i4").tobytes()
    integral = (bin_weight == np.floor(bin_weight)) & (bin_weight < 2**32)
    fractional_sketches = set(bin_owner[~integral].tolist())
    count_bytes = np.where(integral, bin_weight, 0.0).astype("<u4").tobytes()
    pack = _HEADER.pack
    blobs = []
    zero_list = zeros.tolist()
    for i in range(n):
        start, end = bounds[i], bounds[i + 1]
        if i in fractional_sketches:
            counts = bin_weight[start:end].astype("<f8").tobytes()
            flags = 0
        else:
            counts = count_bytes[4 * start:4 * end]
            flags = _FLAG_INTEGER_COUNTS
        blobs.append(compress(pack(_FORMAT_VERSION, flags, zero_list[i], end - start)
                              + delta_bytes[4 * start:4 * end] + counts))
    return blobs


def _sum_bins(owners: np.ndarray, keys: np.ndarray, weights: np.ndarray | None, n: int,
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(owner, key, summed weight) of every distinct (owner, key), sorted by owner then key.

    A bin whose weights sum to zero is kept, as ``QuantileSketch.add`` keeps it.
    """
    if not len(keys):
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, np.empty(0, dtype=np.float64)
    low = int(keys.min())
    span = int(keys.max()) - low + 1
    cells = owners * span + (keys - low)
    if n * span <= _DENSE_CELLS:
        present = np.flatnonzero(np.bincount(cells, minlength=n * span))
        sums = np.bincount(cells, weights=weights, minlength=n * span)[present]
    else:
        present, inverse = np.unique(cells, return_inverse=True)
        sums = np.bincount(inverse.ravel(), weights=weights)
    return present // span, present % span + low, sums.astype(np.float64, copy=False)
