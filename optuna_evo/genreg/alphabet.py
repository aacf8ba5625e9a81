"""The rendered alphabet: A-Z drawn with Pillow, the seed GENREG's first visual task.

:func:`render_alphabet` draws each capital letter white on black into a ``size x size``
grayscale image. Variation 0 of every letter is the canonical rendering (the first usable font,
centred, at 80 % of the image height); further variations pick a random font among the usable
ones, scale it by a random factor and move it by a random offset, so a classifier has to
generalise across fonts, sizes and positions.

Fonts are TrueType / OpenType files found under the usual font directories (Debian's
``fonts-dejavu-core`` puts DejaVu Sans under ``/usr/share/fonts``). A font is *usable* when it
draws 26 distinct glyphs for A-Z (symbol fonts draw the same box for every letter). Without any
usable font file, Pillow's built-in font is used (``ImageFont.load_default(size=...)``, scalable
since Pillow 10.1).
"""

from __future__ import annotations

from collections.abc import Sequence
import functools
import os
from pathlib import Path

import numpy as np
import torch

from optuna_evo._validation import check_float
from optuna_evo._validation import check_int

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
"""The 26 classes, in label order."""

FONT_DIRS: tuple[str, ...] = (
    "/usr/share/fonts",
    "/usr/local/share/fonts",
    "~/.local/share/fonts",
    "~/.fonts",
    "/Library/Fonts",
    "/System/Library/Fonts",
    "C:/Windows/Fonts",
)
"""Directories searched (recursively) for fonts by :func:`find_fonts`."""

_PREFERRED = ("DejaVuSans.ttf", "LiberationSans-Regular.ttf", "FreeSans.ttf", "Arial.ttf")

FontSpec = str | os.PathLike[str] | None
"""A font file, or ``None`` for Pillow's built-in font."""


def _pil() -> tuple[object, object, object]:
    try:
        from PIL import Image
        from PIL import ImageDraw
        from PIL import ImageFont
    except ImportError as e:  # pragma: no cover - Pillow comes with torchvision
        raise ImportError("render_alphabet needs Pillow: pip install pillow") from e
    return Image, ImageDraw, ImageFont


def _load_font(font: FontSpec, pixels: int) -> object:
    _, _, image_font = _pil()
    pixels = max(int(pixels), 1)
    if font is None:
        try:
            return image_font.load_default(size=pixels)  # type: ignore[attr-defined]
        except TypeError as e:  # Pillow < 10.1: only a fixed-size bitmap font
            raise RuntimeError(
                "No TrueType font found and this Pillow cannot scale its built-in font; install "
                "fonts (e.g. apt-get install fonts-dejavu-core) or Pillow >= 10.1."
            ) from e
    return image_font.truetype(str(font), pixels)  # type: ignore[attr-defined]


def _draw_letter(
    letter: str, size: int, font: FontSpec, scale: float = 1.0, dx: float = 0.0, dy: float = 0.0
) -> np.ndarray:
    """Draw one letter centred (then shifted by ``dx, dy`` pixels) into a uint8 array."""
    image_mod, draw_mod, _ = _pil()
    image = image_mod.new("L", (size, size), 0)  # type: ignore[attr-defined]
    draw = draw_mod.Draw(image)  # type: ignore[attr-defined]
    pil_font = _load_font(font, round(0.8 * size * scale))
    left, top, right, bottom = draw.textbbox((0, 0), letter, font=pil_font)
    # Centre the glyph's ink box (not the text origin), so every font sits in the middle.
    x = (size - (right - left)) / 2 - left + dx
    y = (size - (bottom - top)) / 2 - top + dy
    draw.text((x, y), letter, fill=255, font=pil_font)
    return np.asarray(image, dtype=np.uint8)


def _distinct(font: FontSpec, size: int = 32) -> bool:
    try:
        glyphs = {_draw_letter(ch, size, font).tobytes() for ch in LETTERS}
    except (OSError, ValueError, RuntimeError):
        return False
    blank = np.zeros((size, size), dtype=np.uint8).tobytes()
    return len(glyphs) == len(LETTERS) and blank not in glyphs


@functools.lru_cache(maxsize=8)
def _find_fonts(dirs: tuple[str, ...]) -> tuple[str, ...]:
    found: list[Path] = []
    for d in dirs:
        root = Path(d).expanduser()
        if root.is_dir():
            found.extend(p for p in root.rglob("*") if p.suffix.lower() in (".ttf", ".otf"))
    # Preferred sans fonts first (the canonical variation), then alphabetical by file name.
    rank = {name: i for i, name in enumerate(_PREFERRED)}
    found.sort(key=lambda p: (rank.get(p.name, len(rank)), p.name, str(p)))
    return tuple(str(p) for p in found if _distinct(p))


def find_fonts(dirs: Sequence[str | os.PathLike[str]] | None = None) -> list[str]:
    """Usable font files (26 distinct capital letters), preferred sans fonts first.

    Args:
        dirs: Directories to search recursively; defaults to :data:`FONT_DIRS`.

    Returns:
        Paths of usable ``.ttf`` / ``.otf`` files (possibly empty). Cached per ``dirs``.
    """
    key = tuple(str(d) for d in (FONT_DIRS if dirs is None else dirs))
    return list(_find_fonts(key))


def render_alphabet(
    size: int = 100,
    variations: int = 1,
    fonts: Sequence[FontSpec] | None = None,
    seed: int = 0,
    *,
    scale_range: tuple[float, float] = (0.6, 1.0),
    max_offset: float = 0.12,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Render A-Z as flattened grayscale images in ``[0, 1]`` (white letter on black).

    Args:
        size: Image width and height in pixels, >= 8.
        variations: Images per letter, >= 1. Variation 0 is the canonical rendering; the
            others use a random font from ``fonts``, a random scale in ``scale_range`` and a
            random offset of up to ``max_offset * size`` pixels in each direction.
        fonts: Font files to use (``None`` in the list = Pillow's built-in font). ``None``
            uses :func:`find_fonts`, or the built-in font when no font file is found.
        seed: Seed of the variations (variation 0 does not depend on it).
        scale_range: Range of the random font scale, ``0 < low <= high``.
        max_offset: Largest random shift as a fraction of ``size``, in ``[0, 0.5)``.

    Returns:
        ``(x, y)``: ``x`` is ``float32 [26 * variations, size * size]`` and ``y`` is ``int64``
        labels (0 = A); images are ordered variation by variation, A to Z within each.

    Raises:
        ValueError: If an argument is out of range or the letters do not come out distinct.
    """
    size = check_int("size", size, 8)
    variations = check_int("variations", variations, 1)
    low, high = scale_range
    low = check_float("scale_range[0]", low, 0, low_open=True)
    high = check_float("scale_range[1]", high, low)
    max_offset = check_float("max_offset", max_offset, 0, 0.5, high_open=True)
    font_list: list[FontSpec] = list(find_fonts()) if fonts is None else list(fonts)
    if not font_list:
        font_list = [None]
    rng = np.random.default_rng(seed)
    images = np.empty((variations, len(LETTERS), size, size), dtype=np.uint8)
    for v in range(variations):
        for k, letter in enumerate(LETTERS):
            if v == 0:
                images[v, k] = _draw_letter(letter, size, font_list[0])
                continue
            font = font_list[int(rng.integers(len(font_list)))]
            scale = float(rng.uniform(low, high))
            dx, dy = rng.uniform(-max_offset, max_offset, size=2) * size
            images[v, k] = _draw_letter(letter, size, font, scale, float(dx), float(dy))
    canonical = {images[0, k].tobytes() for k in range(len(LETTERS))}
    if len(canonical) != len(LETTERS) or not images[0].any(axis=(1, 2)).all():
        raise ValueError(
            f"font {font_list[0]!r} does not draw 26 distinct letters at size {size}; pass other "
            "fonts or a larger size."
        )
    x = torch.from_numpy(images.reshape(variations * len(LETTERS), size * size)).float() / 255.0
    y = torch.arange(len(LETTERS)).repeat(variations)
    return x, y
