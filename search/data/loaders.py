"""The ``--data`` formats: each name and where its loader lives.

Plain data, importing nothing: :mod:`search.data.specs` reads it to parse a spec, and imports a
loader module only when its format is loaded (so ``tfrecord`` alone pays for TensorFlow).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Format:
    """One ``--data`` format.

    Attributes:
        module: the module holding the loader.
        function: the loader, ``(DataSpec) -> Dataset``.
        located: whether the spec names a file, folder or glob (``FORMAT:LOCATION``).
    """

    module: str
    function: str
    located: bool = True


FORMATS: dict[str, Format] = {
    "shapes": Format("search.data.shapes", "load_shapes", located=False),
    "mnist": Format("search.data.mnist", "load_mnist"),
    "csv": Format("search.data.csvfile", "load_csv"),
    "voc": Format("search.data.voc", "load_voc"),
    "coco": Format("search.data.coco", "load_coco"),
    "tfrecord": Format("search.data.tfrecord", "load_tfrecord"),
    "folder": Format("search.data.folder", "load_folder"),
}
