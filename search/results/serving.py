"""The winner model's MLflow flavour: ``mlflow.keras``, plus a pyfunc loader that knows the crop
layer, so ``mlflow models serve`` and ``mlflow.pyfunc.load_model`` work in a process that never
imported cropsearch.

Keras rebuilds only its own layers when loading; the crop layer
(:class:`~search.crop.layer.PolicyCrop`) is known once ``search.crop.layer`` is imported. The
``keras`` flavour is saved unchanged (``mlflow.keras.load_model`` after that import); the
``python_function`` flavour loads through :func:`_load_pyfunc` here, with this package copied
into the model as its code, the way MLflow's ``code_paths`` are.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

#: The model's folder holding this package, put on ``sys.path`` by MLflow's pyfunc loader.
CODE = "code"


def save_model(model: Any, path: str, mlflow_model: Any = None, **kwargs: Any) -> None:
    """``mlflow.keras.save_model``, with the pyfunc flavour loading through this module (the
    flavour module ``mlflow.models.Model.log`` calls)."""
    import mlflow.keras
    from mlflow.models import Model
    from mlflow.pyfunc import FLAVOR_NAME

    mlflow_model = Model() if mlflow_model is None else mlflow_model
    mlflow.keras.save_model(model, path, mlflow_model=mlflow_model, **kwargs)
    package = Path(__file__).parents[1]  # the whole `search` package
    shutil.copytree(
        package, Path(path) / CODE / package.name, ignore=shutil.ignore_patterns("__pycache__")
    )
    pyfunc = mlflow_model.flavors[FLAVOR_NAME]
    pyfunc["loader_module"] = __name__
    pyfunc["code"] = CODE
    mlflow_model.save(str(Path(path) / "MLmodel"))


def _load_pyfunc(path: str) -> Any:
    """The pyfunc model (MLflow calls this with the model's data folder)."""
    from mlflow.keras.load import _load_pyfunc as load_keras_pyfunc

    import search.crop.layer  # noqa: F401  registers the crop layer with Keras

    return load_keras_pyfunc(path)
