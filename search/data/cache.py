"""The decode cache: each decoded dataset stored once on disk, so later loads skip decoding.

Where: ``$CROPSEARCH_CACHE`` if set, else ``~/.cache/cropsearch``; one ``FORMAT-KEY.npz`` per
dataset and option set. Entries are never deleted automatically (removing the folder is safe).

Key (:class:`CacheKey`): SHA-256 over the cache layout version, Pillow's version, the format,
the loader options that shape the content (with defaults filled in; ``max_memory`` and
``cache`` excluded), the bytes of the annotation files, and each image file's resolved path,
size and modification time (a missing file counts too). Editing, touching, adding or removing a
file therefore misses the cache and rebuilds it.

Stored (uncompressed ``.npz``, no pickles): every kept image once, unpadded and back to back
(one channel only when every pixel is gray, as for MNIST: a third of the bytes), its size, and
per split each sample's image index, box and label, plus the class names, whether the data has
boxes, each image's name and stored frame (to place a detector's boxes), and the
:class:`DataReport` as JSON. ``cache=0`` in a spec bypasses the cache (no read,
no write).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import PIL

from search.data.dataset import DataReport, ImageTable
from search.data.decoded import Decoded, SplitIndex
from search.data.specs import DataSpec, option
from search.data.splits import SPLITS

CACHE_ENV = "CROPSEARCH_CACHE"
#: Bump when what a loader produces for the same files and options changes.
LAYOUT_VERSION = 2
#: Pixels compared per step when checking whether an image set is gray.
_CHUNK = 1 << 22


def cache_dir() -> Path:
    """The cache folder (not created here)."""
    configured = os.environ.get(CACHE_ENV)
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "cropsearch"


class CacheKey:
    """Accumulates everything the decoded content depends on into one digest."""

    def __init__(self, fmt: str, options: Mapping[str, Any]) -> None:
        self.format = fmt
        self._digest = hashlib.sha256()
        header = {"layout": LAYOUT_VERSION, "pillow": PIL.__version__, "format": fmt}
        self.add_text(json.dumps({**header, "options": dict(options)}, sort_keys=True))

    def add_text(self, text: str) -> None:
        """Mix in a string."""
        self.add_bytes(text.encode())

    def add_bytes(self, data: bytes) -> None:
        """Mix in raw bytes (length-prefixed, so concatenations cannot collide)."""
        self._digest.update(len(data).to_bytes(8, "little"))
        self._digest.update(data)

    def add_file_stat(self, path: Path) -> None:
        """Mix in a file's path, size and modification time (or that it is missing)."""
        try:
            stat = path.stat()
            self.add_text(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}")
        except OSError:
            self.add_text(f"{path}\0missing")

    def hexdigest(self) -> str:
        """The key as hex."""
        return self._digest.hexdigest()

    def path(self) -> Path:
        """The cache file for this key."""
        return cache_dir() / f"{self.format}-{self.hexdigest()[:24]}.npz"


def load_or_build(spec: DataSpec, key: CacheKey, build: Callable[[], Decoded]) -> Decoded:
    """The cached content for ``key`` when there is a readable entry, else ``build()`` and store
    it; a note in the report says which happened."""
    if not option(spec, "cache", 1, int, low=0, high=1):
        decoded = build()
        decoded.report.notes.append("cache: off (cache=0)")
        return decoded
    path = key.path()
    if path.exists():
        loaded = read(path)
        if loaded is not None:
            loaded.report.notes.append(f"cache: loaded {path}")
            return loaded
    decoded = build()
    try:
        write(path, decoded)
        note = f"cache: decoded and stored in {path}"
    except OSError as error:
        note = f"cache: could not store ({error})"
    decoded.report.notes.append(note)
    return decoded


def write(path: Path, decoded: Decoded) -> None:
    """Store ``decoded`` at ``path`` atomically (write a temporary file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    gray = _is_gray(decoded.pixels)
    meta = {
        "layout": LAYOUT_VERSION,
        "channels": 1 if gray else 3,
        "class_names": list(decoded.class_names),
        "report": decoded.report.to_dict(),
        "boxes": decoded.has_boxes,
        "image_names": None if decoded.images is None else list(decoded.images.names),
    }
    arrays: dict[str, np.ndarray] = {
        "meta": np.array(json.dumps(meta)),
        "pixels": decoded.pixels[::3] if gray else decoded.pixels,
        "sizes": decoded.sizes,
    }
    if decoded.images is not None:
        arrays["image_frames"] = decoded.images.frames
    for name in SPLITS:
        split = decoded.splits[name]
        arrays[f"{name}_image"] = split.image
        arrays[f"{name}_boxes"] = split.boxes
        arrays[f"{name}_labels"] = split.labels
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez(file, **arrays)  # type: ignore[arg-type]
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read(path: Path) -> Decoded | None:
    """The entry at ``path``, or None when it is unreadable or of another layout."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            meta = json.loads(str(stored["meta"]))
            if meta.get("layout") != LAYOUT_VERSION:
                return None
            splits = {
                name: SplitIndex(
                    stored[f"{name}_image"], stored[f"{name}_boxes"], stored[f"{name}_labels"]
                )
                for name in SPLITS
            }
            names = meta.get("image_names")
            table = None if names is None else ImageTable(tuple(names), stored["image_frames"])
            pixels = stored["pixels"]
            if meta.get("channels") == 1:
                pixels = np.stack([pixels] * 3, axis=1).reshape(-1)
            return Decoded(
                tuple(meta["class_names"]),
                pixels,
                stored["sizes"],
                splits,
                DataReport.from_dict(meta["report"]),
                bool(meta.get("boxes", True)),
                table,
            )
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None


def _is_gray(pixels: np.ndarray) -> bool:
    """Whether every RGB pixel of the flat ``pixels`` has R == G == B (stops at the first not)."""
    rgb = pixels.reshape(-1, 3)
    for start in range(0, len(rgb), _CHUNK):
        chunk = rgb[start : start + _CHUNK]
        if not (
            np.array_equal(chunk[:, 0], chunk[:, 1]) and np.array_equal(chunk[:, 1], chunk[:, 2])
        ):
            return False
    return True
