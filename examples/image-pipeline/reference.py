"""The image pipeline in plain Python: the numbers the guests must print.

`python reference.py SEED [THRESHOLD]` prints what
`wasi-map run app.toml --call loader.main SEED` prints: the FNV-1a 32
checksum of the edge image and the count of edge pixels above the threshold.
Every step mirrors one guest (loader.c, grayscale.rs, edges.cpp, sink.c), on
whole images instead of tiles: the tiling must not change the result.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

TILE = 16
DEFAULT_THRESHOLD = 96
MASK = 0xFFFFFFFF


@dataclass(frozen=True)
class Image:
    """Row-major pixels, `channels` bytes each."""

    width: int
    height: int
    channels: int
    pixels: bytes

    def tiles(self, tile: int = TILE) -> dict[bytes, bytes]:
        """The map's "tile:X:Y" values (edge tiles narrower), as the loader writes them."""
        out = {}
        for ty in range(0, self.height, tile):
            for tx in range(0, self.width, tile):
                tw, th = min(tile, self.width - tx), min(tile, self.height - ty)
                starts = (((ty + r) * self.width + tx) * self.channels for r in range(th))
                rows = (self.pixels[s : s + tw * self.channels] for s in starts)
                out[f"tile:{tx // tile}:{ty // tile}".encode()] = b"".join(rows)
        return out


class _Rng:
    """xorshift32, seeded as loader.c seeds it."""

    def __init__(self, seed: int) -> None:
        self.state = ((seed & MASK) * 0x9E3779B1 + 0x7F4A7C15) & MASK or 1

    def __call__(self) -> int:
        x = self.state
        x ^= (x << 13) & MASK
        x ^= x >> 17
        x ^= (x << 5) & MASK
        self.state = x
        return x


def _noise(x: int, y: int, seed: int) -> int:
    h = ((x * 0x85EBCA6B) & MASK) ^ ((y * 0xC2B2AE35) & MASK) ^ seed
    h ^= h >> 15
    h = (h * 0x2C1B3C6D) & MASK
    h ^= h >> 12
    h = (h * 0x297A2D39) & MASK
    h ^= h >> 15
    return h


def synthetic_image(seed: int) -> Image:
    """The loader's RGB image: a gradient, circles and boxes, a little noise."""
    seed &= MASK
    rng = _Rng(seed)
    width = 80 + rng() % 97
    height = 48 + rng() % 81
    shapes = []
    for _ in range(5 + rng() % 4):
        rnd, cx, cy, size = rng() & 1, rng() % width, rng() % height, 6 + rng() % 24
        shapes.append((rnd, cx, cy, size, (rng() & 255, rng() & 255, rng() & 255)))
    out = bytearray()
    for y in range(height):
        for x in range(width):
            rgb = (
                x * 255 // (width - 1),
                y * 255 // (height - 1),
                (x + y) * 255 // (width + height - 2),
            )
            for rnd, cx, cy, r, colour in shapes:
                dx, dy = x - cx, y - cy
                if dx * dx + dy * dy <= r * r if rnd else abs(dx) <= r and 2 * abs(dy) <= r:
                    rgb = colour
            n = _noise(x, y, seed)
            out += bytes(v ^ ((n >> (3 * c)) & 7) for c, v in enumerate(rgb))
    return Image(width, height, 3, bytes(out))


def grayscale(img: Image) -> Image:
    """8-bit luma, (77 R + 150 G + 29 B) >> 8."""
    p = img.pixels
    luma = bytes((77 * p[i] + 150 * p[i + 1] + 29 * p[i + 2]) >> 8 for i in range(0, len(p), 3))
    return Image(img.width, img.height, 1, luma)


def edges(img: Image) -> Image:
    """Sobel |Gx| + |Gy| clamped to 255; the border replicates the nearest pixel."""
    w, h, p = img.width, img.height, img.pixels

    def at(x: int, y: int) -> int:
        return p[min(max(y, 0), h - 1) * w + min(max(x, 0), w - 1)]

    out = bytearray()
    for y in range(h):
        for x in range(w):
            gx = (at(x + 1, y - 1) + 2 * at(x + 1, y) + at(x + 1, y + 1)
                  - at(x - 1, y - 1) - 2 * at(x - 1, y) - at(x - 1, y + 1))  # fmt: skip
            gy = (at(x - 1, y + 1) + 2 * at(x, y + 1) + at(x + 1, y + 1)
                  - at(x - 1, y - 1) - 2 * at(x, y - 1) - at(x + 1, y - 1))  # fmt: skip
            out.append(min(255, abs(gx) + abs(gy)))
    return Image(w, h, 1, bytes(out))


def fnv1a32(data: bytes) -> int:
    h = 2166136261
    for b in data:
        h = ((h ^ b) * 16777619) & MASK
    return h


def run(seed: int, threshold: int = DEFAULT_THRESHOLD) -> tuple[int, int]:
    """(checksum, above): what loader.main(seed) returns."""
    edge = edges(grayscale(synthetic_image(seed))).pixels
    return fnv1a32(edge), sum(b > threshold for b in edge)


if __name__ == "__main__":
    args = [int(a, 0) for a in sys.argv[1:]]
    print(*run(*args))
