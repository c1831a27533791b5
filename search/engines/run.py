"""What ``cropsearch search`` and ``cropsearch confirm`` do, for the CLI to call: check the
request against the data and the stores, open the engine's run, screen (alone or with
workers), confirm, and write the study views."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from search.data import Dataset, load_dataset
from search.data.boxes import (
    BoxSource,
    BoxSourceError,
    StudyBoxes,
    matched_noise,
    parse_sources,
    study_inference,
)
from search.engines.base import SearchRun
from search.engines.common import SearchOptions, StudyError, study_screen_epochs
from search.engines.lookup import check_engine, find_study, recorded_boxes, recorded_setting
from search.engines.optuna import OptunaSearch
from search.ops.devices import describe_device
from search.ops.quiet import quiet_tensorflow
from search.ops.signals import handled
from search.ops.stores import refused_connection
from search.ops.uris import redact
from search.ops.workers import start_workers, wait_workers
from search.results.report import print_comparisons
from search.results.tracking import Tracker
from search.results.views import log_study_views
from search.settings import (
    BOX_FREE_SPACE,
    DEFAULT_BOXES,
    DEFAULT_EPOCHS,
    DEFAULT_SEED,
    DEFAULT_SPACE,
    Engine,
    StudyKey,
    TrainConfig,
)
from search.space import BOX_FREE_KINDS, Space, shipped_space, split_values
from search.study.confirm.model import Confirmation
from search.study.confirm.stage import ConfirmPlan, confirm
from search.study.pool import open_pool, start_early
from search.study.record import TrialRecord
from search.study.store import RecordStore

Printer = Callable[[str], None]


@dataclass(frozen=True)
class SearchOutcome:
    """A finished search: its run, the search trials' records and the confirmation (if any);
    ``started`` is when the command started (``time.monotonic``)."""

    run: SearchRun
    records: list[TrialRecord]
    confirmation: Confirmation | None
    started: float


def run_search(
    options: SearchOptions,
    data: str,
    space: Path | None,
    engine: Engine,
    workers: int = 1,
    verbose: bool = False,
    echo: Printer = print,
    boxes: list[str] | None = None,
    confirm_model: str | None = None,
    started: float | None = None,
) -> SearchOutcome:
    """Load the data and the space (``space`` None: the default for the data), check them
    and the study, open the ``engine``'s run and run it (with ``workers`` processes sharing
    the trials), printing its progress through ``echo``. ``boxes``: the boxes at inference
    to choose for (None: a resumed study's, else exact); validation and test are scored with
    the first, and the default space then also searches ``box_noise``. Several make the
    study multi-objective: validation accuracy with each. ``confirm_model``: checked here,
    before any trial (the CLI confirms on it once the search is done)."""
    started = time.monotonic() if started is None else started  # the command's start
    search_space = Space.load(space) if space is not None else None
    quiet_tensorflow(verbose)
    if workers == 1:
        start_early(options.processes)  # their TensorFlow import overlaps ours and the data's
    echo(f"device: {describe_device()}")
    echo(f"loading data {data} ...")
    try:
        dataset = load_dataset(data)
        if space is None or search_space is None:
            space = shipped_space(DEFAULT_SPACE if dataset.has_boxes else BOX_FREE_SPACE)
            search_space = Space.load(space)
        check_kinds(search_space, dataset, data)
        recorded = None
        if options.study is not None:
            check_engine(options.study, options.storage, engine)
            settings = {k: recorded_setting(options.study, options.storage, k)
                        for k in (StudyKey.BOXES, StudyKey.OBJECTIVE_BOXES, StudyKey.EPOCHS,
                                  StudyKey.SCREEN_EPOCHS)}  # fmt: skip
            recorded = recorded_boxes(settings)
            options = study_screen_epochs(options, settings)
        if options.trial_epochs > options.epochs:
            raise StudyError(
                f"--screen-epochs {options.trial_epochs} is more than --epochs {options.epochs}: "
                "a screening trial trains at most the confirmation's epochs"
            )
        sources = study_sources(boxes, recorded, options.study)
        if len(sources) > 1 and engine != "optuna":
            raise StudyError(f"--boxes given {len(sources)} times needs --engine optuna "
                             "(a multi-objective study)")  # fmt: skip
        options = dataclasses.replace(
            options,
            boxes=str(sources[0]),
            objectives=tuple(str(s) for s in sources) if len(sources) > 1 else (),
            pruner="none" if len(sources) > 1 else options.pruner,
        )
        raw, (dataset, targets) = dataset, study_inference(sources, dataset, options.seed)
        for line in targets.lines:
            echo(line)
        if (
            any(not s.exact for s in sources)
            and Path(space).resolve() == shipped_space(DEFAULT_SPACE).resolve()
        ):
            matched = (matched_noise(b, raw, options.seed) for b in targets.sources)
            search_space = search_space.with_box_noise(
                next((n for n in matched if n is not None), None)
            )
        if options.algorithm == "grid":
            search_space.grid()  # a float parameter without a step: one line, before any trial
        for spec in (options.model, confirm_model):
            if spec is not None:
                check_model(spec, search_space, dataset)
        if options.timeout is not None:  # the budget counts from the command's start
            options = dataclasses.replace(
                options, timeout=max(options.timeout - (time.monotonic() - started), 0.0)
            )
        run = open_run(engine, dataset, search_space, options, echo, targets)
    except Exception as error:
        refused = refused_connection(error)
        if refused is not None:
            raise StudyError(refused) from None
        raise
    sizes = ", ".join(f"{k} {len(getattr(dataset, k))}" for k in ("train", "val", "test"))
    echo(
        f"data: {sizes} samples, {dataset.n_classes} classes "
        f"(ready in {time.monotonic() - started:.1f}s; fingerprint {dataset.fingerprint})"
    )
    echo(f"study '{run.name}' ({engine}) in {run.where}; MLflow: {redact(options.tracking_uri)}")
    if len(sources) > 1:
        echo(
            "choosing for several boxes at inference (multi-objective: validation accuracy "
            f"with each of {', '.join(options.objectives)}); the Pareto front is confirmed, "
            f"the answer is for the first ({sources[0].describe()}); no pruning"
        )
    elif not sources[0].exact:
        echo(f"choosing for {sources[0].describe()} at inference: validation and test use them")
    trials = options.trials or 0
    anchors = min(len(run.anchors), trials) - 1
    echo(
        f"space {space}; {trials} trials x {options.trial_epochs} epochs (confirmation: "
        f"{options.epochs}); trial 0 is the full-image baseline"
        + (f", then each kind's conventional setting ({anchors})" if anchors > 0 else "")
    )
    with handled():
        if workers > 1 and isinstance(run, OptunaSearch):
            # The stores, study, parent run and anchors exist: the workers only join.
            wait_workers(start_workers(run, workers, trials, echo))
            run.options = dataclasses.replace(run.options, trials=0)  # confirm and close
        confirmation = run.run()
    return SearchOutcome(run, run.records.search_records(), confirmation, started)


def study_sources(
    given: list[str] | None, recorded: list[str] | None, study: str | None
) -> list[BoxSource]:
    """The boxes a study chooses for: those it recorded (a resumed study keeps them), else
    ``given``, else exact; a ``given`` that differs from the recorded is refused."""
    try:
        sources = parse_sources(given or recorded or [DEFAULT_BOXES])
        if recorded is not None and given and sources != parse_sources(recorded):
            raise StudyError(
                f"study '{study}' chooses for --boxes {' --boxes '.join(recorded)}; resume it "
                "with the same --boxes (or none) or start a new --study"
            )
    except BoxSourceError as error:
        raise StudyError(str(error)) from None
    for source in sources:
        if source.kind == "detections" and not Path(source.path or "").expanduser().exists():
            raise StudyError(f"--boxes '{source}': no such file")
    return sources


def open_run(
    engine: Engine,
    data: Dataset,
    space: Space,
    options: SearchOptions,
    echo: Printer = print,
    boxes: StudyBoxes | None = None,
) -> SearchRun:
    """The ``engine``'s run over ``space`` on ``data`` (its study created or resumed);
    ``boxes``: those the study chooses for (several: the objectives, Optuna only)."""
    if engine == "keras-tuner":
        from search.engines.keras_tuner import KerasTunerSearch  # keras-tuner loads TensorFlow

        return KerasTunerSearch(data, space, options, echo=echo)
    return OptunaSearch(data, space, options, echo=echo, boxes=boxes)


def check_kinds(space: Space, dataset: Dataset, data: str) -> None:
    """Refuse a space that can produce object kinds when the data has no boxes."""
    needing = space.object_kinds()
    if needing and not dataset.has_boxes:
        raise StudyError(
            f"--data '{data}' has no boxes, but {space.source} can sample {', '.join(needing)}; "
            f"box-free data can use {', '.join(BOX_FREE_KINDS)}: --space {BOX_FREE_SPACE} "
            "(the default for it)"
        )


def check_model(spec: str, space: Space, dataset: Dataset) -> None:
    """Build ``--model`` once for the baseline policy's input: a model that cannot be found
    or does not fit is one line before any trial."""
    from search.training.model import ModelError, build_network, hyperparameters  # TensorFlow

    policy, config = split_values(space.baseline(), TrainConfig(model=spec))
    try:
        build_network(spec, (*policy.size, 3), dataset.n_classes, hyperparameters(config))
    except ModelError as error:
        raise StudyError(str(error)) from None


def study_confirmations(records: RecordStore) -> tuple[Confirmation | None, list[Confirmation]]:
    """The study's own confirmation (else the first other network's) and the others'."""
    every = records.confirmations()
    own = next((c for c in every if not c.network), every[0] if every else None)
    return own, [c for c in every if c is not own]


def print_network_comparison(study: str, storage: str, echo: Callable[[str], None]) -> None:
    """Every other network's confirmation beside the study's own, and their agreement."""
    own, others = study_confirmations(find_study(study, storage).records)
    if own is not None and own.network == "":
        echo(f"the study's network: {own.verdict}")
        print_comparisons(own, others, study, tables=False)


def check_network(spec: str | None, size: Sequence[int], dataset: Dataset) -> None:
    """Build the network ``spec`` once for ``size``: one line when it cannot be built or
    does not fit, before any run."""
    from search.training.model import ModelError, build_network, hyperparameters  # TensorFlow

    try:
        build_network(
            spec, (size[0], size[1], 3), dataset.n_classes, hyperparameters(TrainConfig())
        )
    except ModelError as error:
        raise StudyError(str(error)) from None


def confirm_study(
    name: str,
    data: str | None,
    top: int,
    repeats: int,
    seed: int | None,
    epochs: int | None,
    *,
    storage: str,
    tracking_uri: str,
    verbose: bool = False,
    echo: Printer = print,
    boxes: list[str] | None = None,
    processes: int | None = None,
    model: str | None = None,
    size: tuple[int, int] | None = None,
) -> Confirmation:
    """Re-train the study ``name``'s top policies and its baseline over seeds (``seed`` and
    ``epochs`` None: the study's); finished repeats are reused. Validation and test are
    scored with the boxes the study chose for (``boxes``, when given, must be those).
    ``model``/``size``: confirm on that network and output size instead, kept as a separate
    confirmation of the study. The study views are written whatever happens."""
    found = find_study(name, storage)
    attrs, records = found.attrs, found.records
    spec = data or attrs.get(StudyKey.DATA)
    if spec is None:
        raise StudyError(f"study '{name}' does not record its data; pass --data")
    quiet_tensorflow(verbose)
    start_early(processes)
    dataset = load_dataset(spec)
    if attrs.get(StudyKey.DATA_FINGERPRINT) not in (None, dataset.fingerprint):
        raise StudyError(
            f"--data '{spec}' is not the data study '{name}' ran on "
            f"(fingerprint {dataset.fingerprint}, study {attrs.get(StudyKey.DATA_FINGERPRINT)})"
        )
    searched = [r for r in records.search_records() if r.state == "complete"]
    if not searched:
        raise StudyError(f"study '{name}' has no completed trial to confirm")
    if model is not None or size is not None:  # one line before any run when it cannot fit
        check_network(model or searched[0].train.model, size or searched[0].crop_policy.size,
                      dataset)  # fmt: skip
    sources = study_sources(boxes, recorded_boxes(attrs), name)
    study_seed = int(attrs.get(StudyKey.SEED, DEFAULT_SEED))
    dataset, targets = study_inference(sources, dataset, study_seed)
    for line in targets.lines:
        echo(line)
    tracker = Tracker(tracking_uri, name)
    parent_id = tracker.start_parent(name, {}, attrs.get(StudyKey.PARENT_RUN))
    plan = ConfirmPlan(
        top,
        repeats,
        study_seed if seed is None else seed,
        int(attrs.get(StudyKey.EPOCHS, DEFAULT_EPOCHS)) if epochs is None else epochs,
        boxes=str(sources[0]),
        objectives=tuple(targets.objectives),
        model=model,
        size=size,
    )
    confirmation = None
    try:
        with handled(), open_pool(processes, dataset, tracking_uri, name, parent_id, echo) as pool:
            confirmation = confirm(
                records, dataset, tracker, parent_id, plan, None, echo, targets.sources[1:], pool
            )
        return confirmation
    finally:
        own, others = study_confirmations(records)
        log_study_views(
            tracker,
            parent_id,
            records.search_records(),
            dataset,
            found.importances(),
            own,
            found.provenance(),
            final=records.confirm_records(),
            others=others,
        )
        tracker.end_run(parent_id, "complete")
