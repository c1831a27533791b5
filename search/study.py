"""Run a crop-policy search with Optuna, tracking every trial in MLflow."""

from __future__ import annotations

import csv
import io
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import optuna
from optuna.trial import TrialState

from search.config import TrainConfig
from search.data import Dataset
from search.policy import CropPolicy
from search.space import Space, split_values
from search.tracking import Tracker, flat_params, prepare_sqlite, redact

#: The metric every study maximises: validation accuracy of the last epoch, eval-mode crops.
OBJECTIVE = "val_accuracy"
#: Samples drawn in each trial's crop-sample grid.
GRID_SAMPLES = 8

Printer = Callable[[str], None]


class StudyError(ValueError):
    """A study cannot be started or resumed as asked."""


@dataclass(frozen=True)
class SearchOptions:
    """Everything a search run needs besides the data and the space."""

    trials: int | None = 10
    timeout: float | None = None
    epochs: int = 4
    seed: int = 0
    study: str | None = None
    storage: str = "sqlite:///mlruns/optuna.db"
    tracking_uri: str = "sqlite:///mlruns/mlflow.db"


def default_study_name(data: Dataset, space: Space) -> str:
    """A new, readable study name: data format, space and start time."""
    return f"{data.spec.split(':')[0]}-{space.name}-{datetime.now():%Y%m%d-%H%M%S}"


def open_study(name: str, storage: str, seed: int) -> optuna.Study:
    """Create the study, or load it when it exists (resume by name)."""
    prepare_sqlite(storage)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(
            seed=seed, n_startup_trials=5, multivariate=True, group=True
        )
    return optuna.create_study(
        study_name=name,
        storage=storage,
        direction="maximize",
        sampler=sampler,
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1),
        load_if_exists=True,
    )


def trial_policy(trial: optuna.trial.FrozenTrial) -> CropPolicy:
    """The policy a finished trial trained with (stored with the trial, so exact)."""
    return CropPolicy.from_dict(trial.user_attrs["policy"])


def is_baseline(trial: optuna.trial.FrozenTrial) -> bool:
    """Whether the trial is the study's full-image baseline."""
    return bool(trial.user_attrs.get("baseline"))


class Search:
    """One search run: a study over ``space`` on ``data``, tracked in MLflow."""

    def __init__(
        self, data: Dataset, space: Space, options: SearchOptions, echo: Printer = print
    ) -> None:
        self.data, self.space, self.options, self.echo = data, space, options, echo
        self.name = options.study or default_study_name(data, space)
        self.study = open_study(self.name, options.storage, options.seed)
        self._check_resume()
        self.tracker = Tracker(options.tracking_uri, self.name)
        params = {
            "data": data.spec,
            "data_fingerprint": data.fingerprint,
            "space": space.source,
            "epochs": options.epochs,
            "seed": options.seed,
            "storage": redact(options.storage),
            "objective": OBJECTIVE,
        }
        self.parent_id = self.tracker.start_parent(
            self.name, params, self.study.user_attrs.get("mlflow_parent_run_id")
        )
        for key, value in {**params, "mlflow_parent_run_id": self.parent_id}.items():
            self.study.set_user_attr(key, value)
        self._started = time.monotonic()
        self._done_before = len(self.study.trials)

    def _check_resume(self) -> None:
        known = self.study.user_attrs.get("data_fingerprint")
        if known is not None and known != self.data.fingerprint:
            raise StudyError(
                f"study '{self.name}' was run on other data ({self.study.user_attrs.get('data')}, "
                f"fingerprint {known}); resume it with the same --data or start a new --study"
            )

    def run(self) -> optuna.Study:
        """Enqueue the baseline (first run only), optimise, then log the study-level views."""
        if not self.study.trials:
            self.study.enqueue_trial({}, user_attrs={"baseline": True})
        self.tracker.log_text(self.parent_id, _data_report(self.data), "data_report.txt")
        try:
            self.study.optimize(
                self.objective,
                n_trials=self.options.trials,
                timeout=self.options.timeout,
                callbacks=[self._progress],
                catch=(Exception,),
            )
        finally:
            self.finish()
        return self.study

    def objective(self, trial: optuna.Trial) -> float:
        """Train one policy; report each epoch to the pruner and to MLflow."""
        baseline = bool(trial.user_attrs.get("baseline"))
        values = self.space.baseline() if baseline else self.space.sample(trial)
        base = TrainConfig(epochs=self.options.epochs, seed=self.options.seed)
        policy, config = split_values(values, base)
        trial.set_user_attr("policy", policy.to_dict())
        trial.set_user_attr("train", config.model_dump())
        run_id = self.tracker.start_trial(
            self.parent_id,
            trial.number,
            ("baseline " if baseline else "") + policy.label(),
            {**flat_params("", policy.to_dict()), **flat_params("train.", config.model_dump())},
            {
                "kind": policy.kind,
                "baseline": str(baseline).lower(),
                "data_fingerprint": self.data.fingerprint,
                "study": self.name,
            },
        )
        trial.set_user_attr("mlflow_run_id", run_id)
        twin = self._completed_twin(trial.user_attrs)
        if twin is not None:
            # Same policy and training, same seed: the result is known, do not train again.
            for key in ("test_accuracy", "seconds"):
                trial.set_user_attr(key, twin.user_attrs.get(key))
            trial.set_user_attr("duplicate_of", twin.number)
            self.tracker.copy_results(twin.user_attrs["mlflow_run_id"], run_id)
            self.tracker.end_run(run_id, "complete", {"duplicate_of": str(twin.number)})
            return twin.value or 0.0
        try:
            from search.figures import crop_grid

            grid = crop_grid(
                policy,
                self.data.val.take(slice(0, GRID_SAMPLES)),
                self.data.class_names,
                seed=self.options.seed,
            )
            self.tracker.log_figure(run_id, grid, "crop_samples.png")

            def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
                self.tracker.log_metrics(run_id, metrics, epoch)
                trial.report(metrics[OBJECTIVE], epoch)
                if not baseline and trial.should_prune():
                    raise optuna.TrialPruned(f"pruned after epoch {epoch + 1}")

            from search.train import train_policy

            result = train_policy(policy, self.data, config, on_epoch)
        except optuna.TrialPruned:
            self.tracker.end_run(run_id, "pruned")
            raise
        except BaseException as error:  # KeyboardInterrupt too: the run must not stay "running"
            self.tracker.end_run(run_id, "failed", {"error": f"{type(error).__name__}: {error}"})
            trial.set_user_attr("error", f"{type(error).__name__}: {error}")
            raise
        final = {
            "final_val_accuracy": result.val_accuracy,
            "test_accuracy": result.test_accuracy,
            "train_seconds": result.seconds,
            "n_params": result.n_params,
        }
        self.tracker.log_metrics(run_id, final, config.epochs - 1)
        trial.set_user_attr("test_accuracy", result.test_accuracy)
        trial.set_user_attr("seconds", result.seconds)
        self.tracker.end_run(run_id, "complete")
        return result.val_accuracy

    def _completed_twin(self, attrs: dict[str, Any]) -> optuna.trial.FrozenTrial | None:
        """A complete trial that trained the same policy with the same settings, if any."""
        for done in self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            same = done.user_attrs.get("policy") == attrs["policy"]
            if same and done.user_attrs.get("train") == attrs["train"]:
                return done
        return None

    # -- reporting -----------------------------------------------------------------------
    def _progress(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        done = len(study.trials) - self._done_before
        total = self.options.trials
        elapsed = time.monotonic() - self._started
        policy = trial.user_attrs.get("policy")
        label = CropPolicy.from_dict(policy).label() if policy else "?"
        if trial.state == TrialState.COMPLETE:
            outcome = f"{OBJECTIVE} {trial.value:.4f}"
            if "duplicate_of" in trial.user_attrs:
                outcome += f" (same as trial {trial.user_attrs['duplicate_of']}, not retrained)"
        elif trial.state == TrialState.PRUNED:
            outcome = f"pruned at epoch {len(trial.intermediate_values)}"
        else:
            outcome = f"FAILED: {trial.user_attrs.get('error', 'see log')}"
        best = best_trial(study)
        best_text = f"best {best.value:.4f} (#{best.number})" if best else "best -"
        left = _time_left(elapsed, done, total, self.options.timeout)
        count = f"{done}/{total}" if total else f"{done}"
        self.echo(
            f"[{count}] trial {trial.number} {'(baseline) ' if is_baseline(trial) else ''}{label}: "
            f"{outcome} | {best_text} | {_clock(elapsed)} elapsed{left}"
        )

    def finish(self) -> None:
        """Write the study-level views to the parent run and mark it finished."""
        from search.export import policy_document, policy_yaml
        from search.figures import importances, optimization_history, policy_gallery

        trials = self.study.trials
        board = leaderboard(self.study)
        self.tracker.log_text(self.parent_id, leaderboard_csv(board), "leaderboard.csv")
        values = [t.value if t.state == TrialState.COMPLETE else None for t in trials]
        base_trial = completed_baseline(self.study)
        baseline = base_trial.value if base_trial is not None else None
        if any(v is not None for v in values):
            self.tracker.log_figure(
                self.parent_id, optimization_history(values, baseline), "optimization_history.png"
            )
        scores = param_importances(self.study)
        if scores:
            self.tracker.log_figure(self.parent_id, importances(scores), "param_importances.png")
        best = best_trial(self.study)
        if best is not None:
            document = policy_yaml(policy_document(self.study, best))
            self.tracker.log_text(self.parent_id, document, "best_policy.yaml")
            if base_trial is not None:
                shown = {"baseline": trial_policy(base_trial), "best": trial_policy(best)}
                gallery = policy_gallery(
                    shown, self.data.val.take(slice(0, GRID_SAMPLES)), self.data.class_names
                )
                self.tracker.log_figure(self.parent_id, gallery, "best_vs_baseline.png")
            metrics = {"best_val_accuracy": best.value or 0.0}
            if baseline is not None:
                metrics["baseline_val_accuracy"] = baseline
            self.tracker.log_metrics(self.parent_id, metrics, len(trials))
        self.tracker.end_run(self.parent_id, "complete", {"n_trials": str(len(trials))})


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    """The complete trial with the highest objective (the earliest on a tie), if any."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return max(complete, key=lambda t: (t.value, -t.number)) if complete else None


def _clock(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}:{secs:02d}"


def _time_left(elapsed: float, done: int, total: int | None, timeout: float | None) -> str:
    estimates = []
    if total and done:
        estimates.append(elapsed / done * (total - done))
    if timeout:
        estimates.append(max(timeout - elapsed, 0.0))
    return f", ~{_clock(min(estimates))} left" if estimates else ""


def _data_report(data: Dataset) -> str:
    from search.data.report import format_report

    return format_report(data)


@dataclass(frozen=True)
class Row:
    """One leaderboard line."""

    rank: int
    number: int
    value: float
    test_accuracy: float | None
    policy: str
    baseline: bool


def leaderboard(study: optuna.Study, top: int = 5) -> list[Row]:
    """The ``top`` complete trials by objective, plus the baseline when it is not among them."""
    complete = sorted(
        study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)),
        key=lambda t: (-(t.value or 0.0), t.number),
    )
    rows = [
        Row(
            rank,
            t.number,
            t.value or 0.0,
            t.user_attrs.get("test_accuracy"),
            trial_policy(t).label(),
            is_baseline(t),
        )
        for rank, t in enumerate(complete, start=1)
    ]
    return [r for r in rows if r.rank <= top or r.baseline]


def leaderboard_csv(rows: list[Row]) -> str:
    """The leaderboard as CSV text."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["rank", "trial", OBJECTIVE, "test_accuracy", "policy", "baseline"])
    for r in rows:
        writer.writerow(
            [
                r.rank,
                r.number,
                f"{r.value:.4f}",
                "" if r.test_accuracy is None else f"{r.test_accuracy:.4f}",
                r.policy,
                r.baseline,
            ]
        )
    return out.getvalue()


def param_importances(study: optuna.Study) -> dict[str, float]:
    """Optuna's default parameter importances (PED-ANOVA in Optuna 5) over the searched trials;
    empty when there are too few."""
    searched = [
        t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.params
    ]
    if len(searched) < 4:
        return {}
    searched_only = optuna.create_study(direction="maximize")
    searched_only.add_trials(searched)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter(
                "ignore"
            )  # "few trials in some regimes": expected in short studies
            return dict(optuna.importance.get_param_importances(searched_only))
    except (RuntimeError, ValueError):
        return {}


def completed_baseline(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    """The study's full-image baseline trial, once it has completed."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return next((t for t in complete if is_baseline(t)), None)


def best_minus_baseline(study: optuna.Study) -> tuple[float, float] | None:
    """(best, baseline) objective values, when both exist."""
    best, base = best_trial(study), completed_baseline(study)
    if best is None or base is None or base.value is None or best.value is None:
        return None
    return best.value, base.value


def summary_lines(study: optuna.Study) -> list[str]:
    """Human summary: counts by state and the best-minus-baseline difference."""
    states: dict[str, int] = {}
    for t in study.trials:
        states[t.state.name.lower()] = states.get(t.state.name.lower(), 0) + 1
    lines = ["trials: " + ", ".join(f"{n} {s}" for s, n in sorted(states.items()))]
    pair = best_minus_baseline(study)
    if pair is not None:
        best, base = pair
        difference = f"{100 * (best - base):+.2f} points of {OBJECTIVE}"
        lines.append(f"best - baseline: {best:.4f} - {base:.4f} = {difference}")
    return lines


def rows_as_table(rows: list[Row]) -> list[list[Any]]:
    """Leaderboard rows as printable cells."""
    return [
        [
            r.rank,
            r.number,
            f"{r.value:.4f}",
            "-"
            if r.test_accuracy is None or math.isnan(r.test_accuracy)
            else f"{r.test_accuracy:.4f}",
            r.policy + ("  (baseline)" if r.baseline else ""),
        ]
        for r in rows
    ]
