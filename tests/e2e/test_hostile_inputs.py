"""Hostile but fair input: every mistake is one line on stderr, exit 2, no traceback, no secret
shown, and nothing written (no study, no store, no folder) — in bounded time.

Each case names the files it needs (written into ``inputs/`` before the run) and the command
line; ``{tmp}``, ``{inputs}`` and friends are filled in per test. Nothing here trains.
"""

from __future__ import annotations

import http.server
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import search_args

from search.cli import main
from search.safe_yaml import MAX_FILE_BYTES, MESSAGE_CHARS
from search.settings import TrainConfig
from search.strict import bounds

SECRET = "hunter2"
#: Longest accepted error line: the message bound plus the "error: " prefix and a flag hint.
LINE_LIMIT = MESSAGE_CHARS + 80
#: Seconds any case may take (URI checks wait at most 3 s; TensorFlow's import is ~4 s).
TIME_LIMIT = 20.0

BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
)  # 9**9 = 387 million values once expanded, from 1.6 KB


def _space(body: str) -> str:
    return f"fixed:\n  size: [48, 48]\nparams:\n{body}"


def _foreign_db(path: Path) -> None:
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE experiments (id INTEGER)")
        connection.execute("CREATE TABLE runs (id INTEGER)")
    connection.close()


@dataclass(frozen=True)
class Case:
    """One bad input: files to write, the command line, a fragment of the expected line."""

    args: tuple[str, ...]
    fragment: str
    files: tuple[tuple[str, str | bytes], ...] = ()
    setup: Callable[[Path], None] | None = None


def space_case(content: str | bytes, fragment: str) -> Case:
    return Case(("search", "--space", "{inputs}/space.yaml"), fragment, (("space.yaml", content),))


def policy_case(content: str | bytes, fragment: str) -> Case:
    return Case(
        ("preview", "--policy", "{inputs}/policy.yaml"), fragment, (("policy.yaml", content),)
    )


def set_case(item: str, fragment: str) -> Case:
    return Case(("preview", "--set", item), fragment)


def data_case(spec: str, fragment: str, command: str = "data") -> Case:
    args = ("data", spec) if command == "data" else ("search", "--data", spec)
    return Case(args, fragment)


def storage_case(url: str, fragment: str, setup: Callable[[Path], None] | None = None) -> Case:
    return Case(("search", "--storage", url), fragment, setup=setup)


def tracking_case(uri: str, fragment: str) -> Case:
    return Case(("search", "--tracking-uri", uri), fragment)


def study_case(name: str, fragment: str, command: str = "search") -> Case:
    return Case((command, "--study", name), fragment)


EPOCHS_LOW, EPOCHS_HIGH = bounds(TrainConfig, "epochs")
SEEDS_LOW, SEEDS_HIGH = bounds(TrainConfig, "seed")

CASES: dict[str, Case] = {
    # -- space files ---------------------------------------------------------------------
    "space-alias-bomb": space_case(BOMB, "once YAML aliases expand"),
    "space-alias-bomb-under-fixed": space_case(
        "fixed:\n" + "".join(f"  {line}\n" for line in BOMB.splitlines()) + "params: {}\n",
        "once YAML aliases expand",
    ),
    "space-20000-values": space_case(
        "fixed: {size: [" + ", ".join(["48"] * 20000) + "]}\nparams: {}\n", "more than 10000 values"
    ),
    "space-recursive-alias": space_case("params: &p {kind: *p}\n", "refers to the node"),
    "space-deep-nesting": space_case("params: " + "[" * 200 + "]" * 200 + "\n", "nested deeper"),
    "space-is-a-folder": Case(("search", "--space", "{inputs}"), "is a folder"),
    "space-binary": space_case(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)), "binary"),
    "space-latin1": space_case("params: {}\n# caf\xe9\n".encode("latin-1"), "not UTF-8"),
    "space-too-large": space_case("#" * (MAX_FILE_BYTES + 10), "larger than a space file"),
    "space-named-pipe": Case(
        ("search", "--space", "{inputs}/pipe.yaml"),
        "not a regular file",
        setup=lambda inputs: os.mkfifo(inputs / "pipe.yaml"),
    ),
    "space-device": Case(("search", "--space", "/dev/zero"), "not a regular file"),
    "space-missing": Case(("search", "--space", "{inputs}/none.yaml"), "no such space file"),
    "space-nul-in-path": Case(("search", "--space", "{inputs}/a\x00b.yaml"), "null byte"),
    "space-a-list": space_case("- kind\n- context\n", "must be a mapping"),
    "space-empty": space_case("", "must be a mapping"),
    "space-boolean-low": space_case(
        _space("  fraction: {type: float, low: true, high: 1.0}\n"), "a boolean is not a number"
    ),
    "space-quoted-number": space_case(
        _space("  fraction: {type: float, low: '0.3', high: 1.0}\n"), "a text is not a number"
    ),
    "space-nan": space_case(_space("  context: {type: float, low: .nan, high: 1.0}\n"), "context"),
    "space-infinite": space_case(
        _space("  context: {type: float, low: 0.0, high: .inf}\n"), "outside the allowed range"
    ),
    "space-5000-digits": space_case(
        _space(f"  width: {{type: int, low: {'9' * 5000}, high: 64}}\n"), "unreadable value"
    ),
    "space-impossible-date": space_case(
        "fixed: {context: 2024-13-45}\nparams: {}\n", "unreadable value"
    ),
    "space-huge-parameter-name": space_case(
        _space(f"  {'p' * 1000}: {{type: float, low: 0.0, high: 1.0}}\n"),  # YAML's key limit
        "not a policy or training field",
    ),
    "space-huge-choice": space_case(
        _space(f"  kind: {{type: categorical, choices: [full, {'q' * 200000}]}}\n"),
        "must be one of",
    ),
    "space-low-above-high": space_case(
        _space("  context: {type: float, low: 0.9, high: 0.1}\n"), "low=0.9 > high=0.1"
    ),
    "space-log-from-zero": space_case(
        _space("  learning_rate: {type: float, low: 0.0, high: 0.1, log: true}\n"), "low > 0"
    ),
    "space-zero-step": space_case(
        _space("  width: {type: int, low: 8, high: 64, step: 0}\n"), "step > 0"
    ),
    "space-float-for-int-field": space_case(
        _space("  width: {type: float, low: 8, high: 64}\n"), "whole numbers"
    ),
    "space-boolean-fixed": space_case(
        "fixed: {context: true}\nparams: {}\n", "a boolean is not a number"
    ),
    "space-boolean-choice": space_case(
        _space("  jitter: {type: categorical, choices: [0.1, false]}\n"),
        "a boolean is not a number",
    ),
    "space-when-names-later-param": space_case(
        _space(
            "  context: {type: float, low: 0, high: 1, when: {kind: [object]}}\n"
            "  kind: {type: categorical, choices: [full, object]}\n"
        ),
        "'when' names 'kind'",
    ),
    "space-python-tag": space_case(
        "params: !!python/object/apply:os.system [echo hi]\n", "not valid YAML"
    ),
    "space-two-documents": space_case("params: {}\n---\nparams: {}\n", "not valid YAML"),
    "space-unhashable-key": space_case("params: {[1, 2]: 3}\n", "not valid YAML"),
    "space-text-log": space_case(
        _space("  fraction: {type: float, low: 0.1, high: 1.0, log: 'yes'}\n"), "valid boolean"
    ),
    "space-misspelt-key": space_case(
        _space("  fraction: {type: float, lo: 0.1, high: 1.0}\n"), "params.fraction"
    ),
    # -- policy files and --set ----------------------------------------------------------
    "policy-alias-bomb": policy_case(BOMB, "once YAML aliases expand"),
    "policy-is-a-folder": Case(("preview", "--policy", "{inputs}"), "is a folder"),
    "policy-binary": policy_case(bytes(range(256)) * 4, "binary"),
    "policy-boolean-context": policy_case(
        "kind: object\ncontext: true\n", "policy field 'context' = True: a boolean is not a number"
    ),
    "policy-other-format": policy_case(
        "format: cropsearch.policy/v9\npolicy: {kind: full}\n", "cropsearch.policy/v9"
    ),
    "policy-a-list": policy_case("[1, 2]\n", "a policy must be a mapping"),
    "policy-unknown-field": policy_case("kind: full\ncolour: red\n", "unknown policy field"),
    "policy-boolean-size": policy_case("size: [true, 48]\n", "a boolean is not a number"),
    "policy-nan": policy_case("fraction: .nan\n", "fraction"),
    "policy-missing": Case(("preview", "--policy", "{inputs}/none.yaml"), "no such policy file"),
    "set-boolean": set_case("context=true", "a boolean is not a number"),
    "set-recursive-alias": set_case("context=&a [*a]", "refers to the node"),
    "set-no-equals": set_case("context", "expected FIELD=VALUE"),
    "set-unknown-field": set_case("colour=1", "unknown policy field"),
    "set-broken-yaml": set_case("context=[1", "not valid YAML"),
    "set-quoted-number": set_case('context="0.3"', "a text is not a number"),
    "set-5000-digits": set_case("size=" + "9" * 5000, "unreadable value"),
    # -- data specs -----------------------------------------------------------------------
    "data-negative-train": data_case("shapes:train=-5", "train=-5 is outside"),
    "data-zero-canvas": data_case("shapes:canvas=0", "canvas=0 is outside"),
    "data-billion-train": data_case("shapes:train=1000000000", "train=1000000000 is outside"),
    "data-over-memory": data_case("shapes:train=900000", "over the 4 GiB limit"),
    "data-negative-seed": data_case("shapes:seed=-1", "seed=-1 is outside"),
    "data-exponent-count": data_case("shapes:train=1e9", "is not a valid int"),
    "data-option-twice": data_case("shapes:train=10,train=20", "given twice"),
    "data-unknown-format": data_case("pictures:/nowhere", "unknown format 'pictures'"),
    "data-unknown-option": data_case("shapes:colour=red", "unknown option(s) colour"),
    "data-no-location": data_case("mnist", "needs a location"),
    "data-missing-folder": data_case("mnist:{tmp}/none", "no such folder"),
    "data-empty-mnist-folder": data_case("mnist:{inputs}", "missing train-images-idx3-ubyte"),
    "data-nan-memory": data_case("shapes:max_memory=nan", "max_memory=nan is outside"),
    "data-many-distractors": data_case("shapes:distractors=100000", "distractors=100000"),
    "data-not-key-value": data_case("shapes:train", "is not KEY=VALUE"),
    "data-huge-spec": data_case("shapes:" + "x" * 100000 + "=1", "unknown option(s)"),
    "search-data-negative-train": data_case("shapes:train=-5", "train=-5", command="search"),
    # -- CLI options -----------------------------------------------------------------------
    "epochs-over-the-model-bound": Case(("search", "--epochs", str(EPOCHS_HIGH + 1)), "--epochs"),
    "epochs-zero": Case(("search", "--epochs", str(EPOCHS_LOW - 1)), "--epochs"),
    "seed-negative": Case(("search", "--seed", str(SEEDS_LOW - 1)), "--seed"),
    "seed-over-2-32": Case(("search", "--seed", str(SEEDS_HIGH + 1)), "--seed"),
    "timeout-infinite": Case(("search", "--timeout", "inf"), "--timeout"),
    "timeout-nan": Case(("search", "--timeout", "nan"), "--timeout"),
    "screen-over-one": Case(("search", "--screen", "2"), "--screen"),
    "trials-zero": Case(("search", "--trials", "0"), "--trials"),
    "misspelt-flag": Case(("search", "--trails", "3"), "--trails"),
    "preview-zero-samples": Case(("preview", "--n", "0"), "--n"),
    "preview-negative-seed": Case(("preview", "--seed", "-3"), "--seed"),
    "ui-port-zero": Case(("ui", "--port", "0"), "--port"),
    "confirm-epochs-over": Case(
        ("confirm", "--study", "s", "--epochs", str(EPOCHS_HIGH + 1)), "--epochs"
    ),
    # -- storage and tracking URIs ---------------------------------------------------------
    "storage-unknown-scheme": storage_case("foo://x/y", "not a database URL"),
    "storage-not-a-url": storage_case("not a url", "not a database URL"),
    "storage-folder": storage_case("sqlite:///{inputs}", "is a folder"),
    "storage-text-file": storage_case(
        "sqlite:///{inputs}/notes.txt",
        "is not a SQLite database",
        setup=lambda inputs: (inputs / "notes.txt").write_text("notes\n") and None,
    ),
    "storage-is-the-mlflow-db": storage_case(
        "sqlite:///{inputs}/mlflow.db",
        "another program's tables",
        setup=lambda inputs: _foreign_db(inputs / "mlflow.db"),
    ),
    "storage-inside-a-file": storage_case(
        "sqlite:///{inputs}/notes.txt/optuna.db",
        "is not a folder",
        setup=lambda inputs: (inputs / "notes.txt").write_text("notes\n") and None,
    ),
    "storage-unwritable-folder": storage_case("sqlite:////proc/optuna.db", "cannot create files"),
    "storage-sqlite-with-host": storage_case("sqlite://host/x.db", "has no host"),
    "storage-password-no-user": storage_case(
        f"postgresql://:{SECRET}@127.0.0.1:{{closed_port}}/db", "postgresql://:***@"
    ),
    "storage-password-in-query": storage_case(
        f"postgresql://127.0.0.1:{{closed_port}}/db?user=u&password={SECRET}", "password=***"
    ),
    "storage-mysql-token": storage_case(
        f"mysql://u:{SECRET}@127.0.0.1:{{closed_port}}/db?token={SECRET}", "mysql://u:***@"
    ),
    "tracking-refused": tracking_case(
        f"http://u:{SECRET}@127.0.0.1:{{closed_port}}", "cannot reach 127.0.0.1"
    ),
    "tracking-not-mlflow": tracking_case(
        f"http://u:{SECRET}@127.0.0.1:{{http_404}}", "does not answer as an MLflow"
    ),
    "tracking-bad-credentials": tracking_case(
        f"http://u:{SECRET}@127.0.0.1:{{http_401}}", "refused the credentials"
    ),
    "tracking-plain-folder": tracking_case("mlruns", "not supported here"),
    "tracking-file-uri": tracking_case("file:///{tmp}/mlruns", "not supported here"),
    "tracking-no-host": tracking_case("http://", "no host"),
    "tracking-port-out-of-range": tracking_case("http://127.0.0.1:99999", "malformed URI"),
    "tracking-unknown-host": tracking_case("http://no-such-host.invalid:5000", "not found"),
    "tracking-databricks": tracking_case("databricks", "not supported here"),
    "tracking-sqlite-folder": tracking_case("sqlite:///{inputs}", "is a folder"),
    "export-storage-not-sqlite": Case(
        ("export", "--storage", "sqlite:////etc/hostname"), "is not a SQLite database"
    ),
    "export-no-storage": Case(("export", "--storage", "sqlite:///{tmp}/none.db"), "no study"),
    "ui-bad-tracking": Case(("ui", "--tracking-uri", "foo://x"), "not a database URL"),
    # -- study names -----------------------------------------------------------------------
    "study-parent-folders": study_case("../../x", "may only hold"),
    "study-600-characters": study_case("s" * 600, "has 600 characters"),
    "study-slash": study_case("a/b", "may only hold"),
    "study-hidden": study_case(".hidden", "may not start with '.'"),
    "study-space": study_case("my study", "may only hold"),
    "study-newline": study_case("a\nb", "may only hold"),
    "study-empty": study_case("", "may only hold"),
    "study-absolute": study_case("/tmp/x", "may only hold"),
    "confirm-study-parent-folders": study_case("../x", "may only hold", command="confirm"),
    # -- export to a place that cannot be written -----------------------------------------
    "export-into-a-file": Case(
        ("export", "--storage", "{study_db}", "-o", "{inputs}/notes.txt/best.yaml"),
        "cannot write",
        setup=lambda inputs: (inputs / "notes.txt").write_text("notes\n") and None,
    ),
    "export-onto-a-folder": Case(
        ("export", "--storage", "{study_db}", "-o", "{inputs}"), "cannot write"
    ),
    "export-unwritable": Case(
        ("export", "--storage", "{study_db}", "-o", "/proc/best_policy.yaml"), "cannot write"
    ),
}


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``folder`` with its size and modification time."""
    found = {}
    for path in folder.rglob("*"):
        info = path.lstat()
        found[str(path.relative_to(folder))] = (info.st_size, info.st_mtime_ns)
    return found


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _Answer(http.server.BaseHTTPRequestHandler):
    code = 404

    def do_GET(self) -> None:
        self.send_response(self.code)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def http_ports() -> Iterator[dict[str, int]]:
    """Two local HTTP servers: one answers 404 (not MLflow), one 401 (bad credentials)."""
    servers = {}
    for name, code in (("http_404", 404), ("http_401", 401)):
        handler = type(f"Answer{code}", (_Answer,), {"code": code})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers[name] = server
    yield {name: int(server.server_address[1]) for name, server in servers.items()}
    for server in servers.values():
        server.shutdown()
        server.server_close()


def _study_db(folder: Path) -> str:
    """A study with one complete trial (for export), in ``folder``."""
    import optuna

    from search.crop.policy import CropPolicy
    from search.settings import TrialKey
    from search.study.record import TrialRecord

    storage = f"sqlite:///{folder}/optuna.db"
    study = optuna.create_study(study_name="done", storage=storage, direction="maximize")
    record = TrialRecord(
        study="done",
        number=0,
        state="complete",
        policy=CropPolicy().to_dict(),
        train=TrainConfig(),
        val_accuracy=0.5,
    )
    study.add_trial(
        optuna.trial.create_trial(value=0.5, user_attrs={TrialKey.RECORD: record.to_json()})
    )
    return storage


def test_at_least_sixty_distinct_bad_inputs() -> None:
    assert len(CASES) >= 60
    assert len({case.args + tuple(map(str, case.files)) for case in CASES.values()}) == len(CASES)


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    http_ports: dict[str, int],
) -> None:
    case = CASES[name]
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for file_name, content in case.files:
        target = inputs / file_name
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)
    if case.setup is not None:
        case.setup(inputs)
    values = {"tmp": str(tmp_path), "inputs": str(inputs), "closed_port": str(_closed_port())}
    values.update({key: str(port) for key, port in http_ports.items()})
    if any("{study_db}" in arg for arg in case.args):
        values["study_db"] = _study_db(inputs)
    args = [arg.format(**values) for arg in case.args]
    monkeypatch.chdir(tmp_path)  # the default stores (mlruns/) would land here
    before = _snapshot(tmp_path)
    capsys.readouterr()

    started = time.monotonic()
    code = main(args)
    elapsed = time.monotonic() - started

    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert case.fragment in lines[0], lines[0]
    assert len(lines[0]) <= LINE_LIMIT
    assert SECRET not in out + err
    assert elapsed < TIME_LIMIT
    assert _snapshot(tmp_path) == before, "a rejected command wrote files"


@pytest.mark.slow  # two processes importing TensorFlow: ~16 s
def test_tensorflow_start_up_lines_stay_off_the_terminal(tmp_path: Path) -> None:
    """TensorFlow's start-up lines (absl's pre-init warning, and the oneDNN notice or a CUDA
    probe's error, as the machine has them) show only with --verbose; a command's stderr is
    otherwise empty."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # as a user runs
    command = [
        sys.executable, "-m", "search.cli", "preview", "--data", "shapes:train=4,val=4,test=4",
        "--n", "2", "-o", str(tmp_path / "crops.png"),
    ]  # fmt: skip
    quiet = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == ""
    loud = subprocess.run([*command, "--verbose"], capture_output=True, text=True, env=env)
    assert loud.returncode == 0, loud.stderr
    assert "absl::InitializeLog" in loud.stderr, loud.stderr  # oneDNN's notice: not every CPU


@pytest.mark.slow
def test_secrets_reach_no_terminal_store_or_artifact(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A real search and export with secrets in both URIs: the terminal, the Optuna and MLflow
    databases, the artifacts and the exported file never hold them."""
    storage = f"sqlite:///{tmp_path}/optuna.db?password={SECRET}"
    tracking = f"sqlite:///{tmp_path}/mlflow.db?token={SECRET}"
    args = search_args(tmp_path, "secrets", trials=1)
    args[args.index("--storage") + 1] = storage
    args[args.index("--tracking-uri") + 1] = tracking
    assert main(args) == 0
    assert main(["export", "--storage", storage, "-o", str(tmp_path / "best.yaml")]) == 0
    out, err = capsys.readouterr()
    assert SECRET not in out + err
    assert "password=***" in out
    written = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert any(path.suffix == ".png" for path in written)  # the artifacts were written
    for path in written:
        assert SECRET.encode() not in path.read_bytes(), path


@pytest.mark.slow
def test_a_storage_server_that_never_answers_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A host that accepts the connection and then stays silent: no hang, no traceback. A
    silent server may be one restarting, so it gets the one retry budget of a lost store."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True).start()
    port = listener.getsockname()[1]
    storage = f"postgresql://u:hunter2secret@127.0.0.1:{port}/db"
    args = ["search", "--data", "shapes:train=24,val=12,test=12", "--storage", storage]
    args += ["--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db"]
    capsys.readouterr()
    code = main(args)
    err = capsys.readouterr().err
    listener.close()
    assert code == 2
    # The password in the URL is warned about first (it works, but others can see it).
    warning, *lines = err.strip().splitlines()
    assert warning.startswith("warning: --storage") and "PGPASSWORD" in warning
    assert len(lines) == 1 and "did not answer for 60s" in lines[0], lines
    assert "connection timeout expired" in lines[0]
    assert "hunter2secret" not in err and "Traceback" not in err
