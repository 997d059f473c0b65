"""The main job: the examples end to end, from Airflow and from Dagster, on the embedded sandbox.

1. starts ``flyte-bridge sandbox start`` on a free port with a throw-away data directory;
2. registers ``examples/flyte`` with ``pyflyte register``;
3. runs the example DAG with ``airflow dags test`` (a temporary AIRFLOW_HOME with SQLite, the
   ``flyte_default`` connection pointing at the sandbox) and, at the same time, the Dagster
   example with ``materialize`` and ``execute_in_process`` (``main_job_dagster.py``);
4. stops the sandbox and prints one row per step: the Flyte execution it drove, read back from
   the sandbox with the core client, its phase, duration and console URL.

It exits 1 if any step did not end as expected (the approved release SUCCEEDED, the terminated
run ABORTED, ...), 2 if the sandbox or the registration failed. Logs of every command are kept
in a temporary directory, which is printed and kept when something failed.

Run it with ``bash scripts/main.sh`` (which sets up .venv first) or ``python scripts/main_job.py``
from an environment where ``pip install -e '.[dev]'`` was done.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from flyte_bridge.backfill import cron_ticks
from flyte_bridge.client import FlyteClient
from flyte_bridge.config import ClientConfig
from flyte_bridge.errors import FlyteBridgeError
from flyte_bridge.models import Execution
from flyte_bridge.naming import execution_name

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
EXAMPLE_WORKFLOWS = REPO / "examples" / "flyte"
EXAMPLE_DAGS = REPO / "examples" / "airflow" / "dags"
DAGSTER_RUNNER = Path(__file__).resolve().with_name("main_job_dagster.py")
PROJECT, DOMAIN = "flytesnacks", "development"
VERSION = "main-job"
AIRFLOW_DAG = "flyte_daily_report"
DAILY_REPORT_CRON = "0 6 * * *"
"""The schedule of the ``daily_report`` launch plan (examples/flyte/daily_report.py)."""
TITLES = {
    "Airflow": f"Airflow: airflow dags test {AIRFLOW_DAG}",
    "Dagster": "Dagster: examples/dagster/definitions.py",
    "Sandbox": "Sandbox: flyte-bridge sandbox start",
}

SANDBOX_START_TIMEOUT = 60.0
SANDBOX_STOP_TIMEOUT = 30.0
COMMAND_TIMEOUT = 420.0
SETTLE_TIMEOUT = 60.0
"""Seconds to let a run still ABORTING (terminated just before) reach its terminal phase."""


class JobError(Exception):
    """A step of the set-up failed (sandbox, registration): nothing after it can run.

    Attributes:
        log_path: The log of the command that failed, when there is one.
    """

    def __init__(self, message: str, log_path: Path | None = None) -> None:
        super().__init__(message)
        self.log_path = log_path


@dataclasses.dataclass
class Step:
    """One row of the summary: what an orchestrator did and how its Flyte execution ended."""

    orchestrator: str
    name: str
    expected_phase: str
    execution_name: str | None = None
    expected_runs: int | None = None
    expected_labels: dict[str, str] = dataclasses.field(default_factory=dict)
    execution: Execution | None = None
    url: str = ""
    problems: list[str] = dataclasses.field(default_factory=list)
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.execution is not None and not self.problems


# Running commands.


class Commands:
    """Runs the job's commands with logs in ``log_dir``; kills what still runs on ``kill_all``."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self._running: set[subprocess.Popen[str]] = set()
        self._lock = threading.Lock()

    def run(
        self,
        label: str,
        argv: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        cwd: Path = REPO,
        timeout: float = COMMAND_TIMEOUT,
        on_line: Callable[[str], None] | None = None,
    ) -> None:
        """Runs ``argv`` to the end, streaming its output to ``<label>.log`` and ``on_line``.

        Raises:
            JobError: The command failed or ran longer than ``timeout`` (it is then killed).
        """
        log_path = self.log_dir / f"{label}.log"
        process = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env={**clean_environ(), **(env or {}), "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        with self._lock:
            self._running.add(process)
        timed_out = threading.Event()

        def expire() -> None:
            timed_out.set()
            _kill_group(process)

        timer = threading.Timer(timeout, expire)
        timer.start()
        try:
            with log_path.open("w") as log:
                assert process.stdout is not None
                for line in process.stdout:
                    log.write(line)
                    if on_line is not None:
                        on_line(line)
            returncode = process.wait()
        finally:
            timer.cancel()
            with self._lock:
                self._running.discard(process)
        if returncode != 0:
            reason = f"timed out after {timeout:.0f} s" if timed_out.is_set() else "failed"
            raise JobError(f"{label} {reason} (exit code {returncode}); see {log_path}", log_path)

    def kill_all(self) -> None:
        """Kills every command still running, with its children."""
        with self._lock:
            running = list(self._running)
        for process in running:
            _kill_group(process)


def clean_environ() -> dict[str, str]:
    """This process's environment without the settings of a user's own Flyte, Airflow, Dagster.

    The job brings its own: a FLYTE_PLATFORM_URL or an AIRFLOW__CORE__EXECUTOR set in the
    user's shell must not send the examples elsewhere or change how they run.
    """
    own = ("FLYTE_", "FLYTECTL_CONFIG", "_FLYTECTL_CONFIG", "AIRFLOW_", "DAGSTER_")
    return {key: value for key, value in os.environ.items() if not key.startswith(own)}


def _kill_group(process: subprocess.Popen[Any]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class SandboxProcess:
    """``flyte-bridge sandbox start`` in a subprocess, as a user would run it."""

    def __init__(self, data_dir: Path, log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("w")
        self._process = subprocess.Popen(
            [str(BIN / "flyte-bridge"), "sandbox", "start", "--port", "0"]
            + ["--data-dir", str(data_dir)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**clean_environ(), "PYTHONUNBUFFERED": "1"},
            start_new_session=True,
        )
        self.endpoint = ""
        self.http_url = ""
        self.flytekit_config = ""

    def wait_until_serving(self, timeout: float = SANDBOX_START_TIMEOUT) -> None:
        """Waits for the banner; reads the endpoint and the flytekit config the CLI prints."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log_path.read_text()
            if "Press Ctrl-C to stop." in text:
                self._parse_banner(text)
                return
            if self._process.poll() is not None:
                break
            time.sleep(0.1)
        raise JobError(f"the sandbox did not start; see {self.log_path}", self.log_path)

    def _parse_banner(self, text: str) -> None:
        for line in text.splitlines():
            if line.startswith("Flyte sandbox serving gRPC on "):
                self.endpoint = line.removeprefix("Flyte sandbox serving gRPC on ").split()[0]
            if line.startswith("Signed URLs and task logs on "):
                self.http_url = line.removeprefix("Signed URLs and task logs on ").strip()
        config = text.split("flytekit config", 1)[1].split("\n", 1)[1]
        self.flytekit_config = config.split("Press Ctrl-C to stop.")[0].strip() + "\n"
        if not self.endpoint or "admin:" not in self.flytekit_config:
            raise JobError(
                f"could not read the sandbox's endpoint; see {self.log_path}", self.log_path
            )

    def stop(self, timeout: float = SANDBOX_STOP_TIMEOUT) -> bool:
        """SIGTERM, as a service manager stops it; killed after ``timeout``. Whether it stopped
        cleanly.

        Not SIGINT: a job started in the background of a non-interactive shell (``&``, nohup, some
        CI runners) ignores SIGINT, and so would the sandbox it starts.
        """
        clean = True
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                clean = False
                _kill_group(self._process)
                self._process.wait()
        _kill_group(self._process)  # task processes the sandbox may have left behind
        self._log.close()
        return clean and self._process.returncode == 0


# The two orchestrators.


def airflow_env(home: Path, endpoint: str, console_url: str) -> dict[str, str]:
    """A private AIRFLOW_HOME with SQLite, the example DAGs and ``flyte_default`` on the sandbox,
    whose links point at the sandbox's console pages (its HTTP endpoint)."""
    host, port = endpoint.rsplit(":", 1)
    extra = {"insecure": True, "project": PROJECT, "domain": DOMAIN}
    if console_url:
        extra["console_url"] = console_url
    connection = {"conn_type": "flyte", "host": host, "port": int(port), "extra": extra}
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(EXAMPLE_DAGS),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW_CONN_FLYTE_DEFAULT": json.dumps(connection),
    }


def airflow_run(home: Path, dag_id: str) -> tuple[str, dt.datetime, dict[str, str]]:
    """The DAG's latest run: its id, data interval end and task states (metadata database)."""
    with contextlib.closing(sqlite3.connect(home / "airflow.db")) as db:
        row = db.execute(
            "SELECT run_id, data_interval_end FROM dag_run WHERE dag_id = ? "
            "ORDER BY id DESC LIMIT 1",
            (dag_id,),
        ).fetchone()
        if row is None:
            raise JobError(f"airflow dags test left no run of {dag_id}")
        states = db.execute(
            "SELECT task_id, state FROM task_instance WHERE dag_id = ? AND run_id = ?",
            (dag_id, row[0]),
        ).fetchall()
    interval_end = dt.datetime.fromisoformat(row[1])
    if interval_end.tzinfo is None:
        interval_end = interval_end.replace(tzinfo=dt.timezone.utc)
    return row[0], interval_end, {task_id: state or "none" for task_id, state in states}


AIRFLOW_STEPS = [
    # step, the launch task whose execution it drove, the tasks of the step, expected phase
    ("launch + wait daily report", "launch_daily_report", ["launch_daily_report"], "SUCCEEDED"),
    ("read outputs", "launch_daily_report", ["read_report"], "SUCCEEDED"),
    (
        "approve gate + set input",
        "launch_release",
        ["launch_release", "approve_review", "set_rollout", "wait_for_release"],
        "SUCCEEDED",
    ),
    ("backfill a week", "backfill_week", ["backfill_week"], "SUCCEEDED"),
    (
        "terminate a long run",
        "launch_long_run",
        ["launch_long_run", "terminate_long_run", "check_long_run_aborted"],
        "ABORTED",
    ),
]

DAGSTER_STEPS = [
    # step, the runner's step that drove the execution, expected phase
    ("launch + wait daily report", "daily_report", "SUCCEEDED"),
    ("read outputs", "daily_report", "SUCCEEDED"),
    ("approve gate + set input", "release", "SUCCEEDED"),
    ("backfill a week", "backfill", "SUCCEEDED"),
    ("terminate a long run", "stop", "ABORTED"),
]


def airflow_steps(home: Path, dag_id: str, failure: str | None) -> list[Step]:
    """The Airflow rows: execution names follow the provider's rule (dag, task, run, map index)."""
    steps = [Step("Airflow", name, phase) for name, *_, phase in AIRFLOW_STEPS]
    try:
        run_id, interval_end, states = airflow_run(home, dag_id)
    except (JobError, sqlite3.Error) as error:
        for step in steps:
            step.problems.append(failure or str(error))
        return steps
    for step, (_, launch_task, tasks, _) in zip(steps, AIRFLOW_STEPS, strict=True):
        step.execution_name = execution_name(dag_id, launch_task, run_id, -1)
        if launch_task == "launch_daily_report":
            step.expected_labels = {"airflow-dag": dag_id}  # set by the example DAG
        if launch_task == "backfill_week":
            # The DAG backfills [data_interval_end - 7 days, data_interval_end], both included.
            week = (interval_end - dt.timedelta(days=7), interval_end)
            step.expected_runs = len(cron_ticks(DAILY_REPORT_CRON, *week))
        for task_id in tasks:
            if states.get(task_id) != "success":
                step.problems.append(f"task {task_id} {states.get(task_id, 'did not run')}")
    if failure is not None:
        steps[0].problems.append(failure)
    return steps


def dagster_steps(results_path: Path, failure: str | None) -> list[Step]:
    """The Dagster rows: the execution ids the Dagster runs reported in their metadata."""
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    steps = []
    for name, runner_step, phase in DAGSTER_STEPS:
        step = Step("Dagster", name, phase)
        result = results.get(runner_step)
        if result is None:
            step.problems.append(failure or f"the Dagster step {runner_step} did not run")
        elif "error" in result:
            step.problems.append(result["error"])
        else:
            step.execution_name = result["execution_id"]
            # Every execution Dagster launches, backfills too, names its run: the sensor skips it.
            step.expected_labels = {"dagster-run-id": result["dagster_run_id"]}
            step.expected_runs = 7  # the partitions of main_job_dagster.WEEK
            if name == "read outputs":
                step.detail = f"Dagster preview: {result.get('preview')!r}"
        steps.append(step)
    return steps


# Checking the executions.


def check(client: FlyteClient, step: Step) -> None:
    """Reads the step's execution from Flyte and notes what is not as expected."""
    if step.execution_name is None:
        return
    try:
        execution = client.fetch_execution(step.execution_name)
        if not execution.is_done:
            execution = client.wait(execution, timeout=SETTLE_TIMEOUT, poll_interval=0.5)
    except FlyteBridgeError as error:
        step.problems.append(f"execution {step.execution_name}: {error}")
        return
    step.execution = execution
    step.url = client.console_url(execution)
    for key, value in step.expected_labels.items():
        if execution.labels.get(key) != value:
            step.problems.append(f"label {key}={execution.labels.get(key)!r}, expected {value!r}")
    if execution.phase_name != step.expected_phase:
        error = f": {execution.error.message}" if execution.error else ""
        step.problems.append(f"expected {step.expected_phase}{error}")
        return
    if step.name == "read outputs":
        line = client.fetch_outputs(execution)["o0"]
        if not line.startswith("report eu "):
            step.problems.append(f"unexpected report {line!r}")
        if step.orchestrator == "Dagster" and repr(line) not in step.detail:
            step.problems.append(f"Dagster showed another output than Flyte's {line!r}")
        step.detail = f"o0 = {line!r}"
    elif step.name.startswith("approve"):
        outputs = client.fetch_outputs(execution)
        if outputs != {"o0": "release 2 at 25%"}:
            step.problems.append(f"unexpected outputs {outputs}")
        step.detail = f"o0 = {outputs.get('o0')!r}"
    elif step.name.startswith("backfill"):
        synced = client.sync(execution, sync_nodes=True)
        runs = [node for node in synced.node_executions.values() if node.kind == "launch_plan"]
        if len(runs) != step.expected_runs:
            step.problems.append(f"expected {step.expected_runs} daily runs, found {len(runs)}")
        step.detail = f"{len(runs)} runs of daily_report"
    elif step.name.startswith("terminate"):
        step.detail = execution.error.message if execution.error else ""


def summary(steps: Sequence[Step], titles: dict[str, str]) -> Table:
    """The table printed at the end: one row per step under a row naming its orchestrator."""
    table = Table(title="flyte-bridge main job")
    table.add_column("", no_wrap=True)
    table.add_column("Step", max_width=40, overflow="fold")
    table.add_column("Phase", no_wrap=True)
    table.add_column("Duration", no_wrap=True, justify="right")
    table.add_column("Flyte execution (console URL)", overflow="fold")
    previous = None
    for step in steps:
        if step.orchestrator != previous:
            if previous is not None:
                table.add_section()
            table.add_row("", f"[bold]{titles[step.orchestrator]}[/]")
            previous = step.orchestrator
        execution = step.execution
        duration = execution.duration if execution is not None else None
        notes = [f"[red]{problem}[/]" for problem in step.problems]
        if step.detail:
            notes.append(f"[dim]{step.detail}[/]")
        table.add_row(
            "[green]✓[/]" if step.ok else "[red]✗[/]",
            "\n".join([step.name, *notes]),
            execution.phase_name if execution is not None else "-",
            f"{duration.total_seconds():.1f} s" if duration is not None else "-",
            step.url or step.execution_name or "-",
        )
    return table


# The job.


class Display:
    """The progress display: one line per stage, and what the sandbox is running right now.

    A stage ends marked ✓ (done), ✗ (failed) or – (not run); one that raises inside
    :meth:`running` is marked failed, so no spinner is left on it in the last frame.
    """

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self._flyte: TaskID | None = None
        self._ended: set[TaskID] = set()

    def stage(self, description: str) -> TaskID:
        return self.progress.add_task(description, total=None)

    @contextlib.contextmanager
    def running(self, description: str) -> Iterator[TaskID]:
        """A stage that is marked failed (with its last description) if the block raises."""
        task = self.stage(description)
        try:
            yield task
        except BaseException as error:
            if task not in self._ended:
                what = "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
                current = self.progress.tasks[task].description
                self.done(task, f"{current}: {what}", ok=False)
            raise

    def update(self, task: TaskID, description: str) -> None:
        self.progress.update(task, description=description)

    def done(self, task: TaskID, description: str, ok: bool | None = True) -> None:
        """Ends a stage: ``ok`` True is done, False failed, None not run."""
        mark = {True: "[green]✓[/]", False: "[red]✗[/]", None: "[dim]–[/]"}[ok]
        self._ended.add(task)
        self.progress.update(task, description=f"{mark} {description}", total=1, completed=1)

    def watch_flyte(self, client: FlyteClient, stop: threading.Event) -> None:
        """Shows the executions still running in the sandbox, until ``stop`` is set; then says
        how many ran and whether any is still going (never that all ended when none ran)."""
        self._flyte = self.stage("Flyte: nothing running yet")
        seen: set[str] = set()
        running: list[Execution] | None = []
        while True:
            stopping = stop.wait(1.0)
            try:
                recent = client.recent_executions(limit=50)
            except FlyteBridgeError:
                running = None  # admin did not answer this time
            else:
                seen.update(str(execution.id) for execution in recent)
                running = [execution for execution in recent if not execution.is_done]
            if stopping:
                break
            if running is None:
                continue
            names = ", ".join(
                f"{execution.launch_plan.name} ({execution.phase_name})" for execution in running
            )
            waiting = f"waiting on {len(running)}: {names}" if running else "nothing running"
            self.update(self._flyte, f"Flyte: {waiting}")
        if running is None:
            self.done(self._flyte, "Flyte: the sandbox did not answer at the end", ok=None)
        elif not seen:
            self.done(self._flyte, "Flyte: no execution ran", ok=None)
        elif running:
            self.done(self._flyte, f"Flyte: {len(running)} of {len(seen)} still running", ok=None)
        else:
            self.done(self._flyte, f"Flyte: all {len(seen)} executions ended")


def run_airflow(
    commands: Commands,
    display: Display,
    home: Path,
    sandbox: SandboxProcess,
    registered: threading.Event,
    failures: dict[str, JobError],
) -> None:
    """``airflow db migrate``, then ``airflow dags test`` once the workflows are registered."""
    home.mkdir()
    env = airflow_env(home, sandbox.endpoint, sandbox.http_url)
    with display.running("Airflow: airflow db migrate") as stage:
        commands.run("airflow-db-migrate", [str(BIN / "airflow"), "db", "migrate"], env=env)
        display.update(stage, "Airflow: waiting for the registration")
        registered.wait()
        if "register" in failures:
            display.done(stage, "Airflow: not run, the registration failed", ok=None)
            return

        def show(line: str) -> None:
            if "[DAG TEST] starting task_id=" in line:
                task_id = line.split("task_id=", 1)[1].split()[0]
                display.update(stage, f"Airflow: airflow dags test {AIRFLOW_DAG}: {task_id}")

        display.update(stage, f"Airflow: airflow dags test {AIRFLOW_DAG}")
        try:
            commands.run(
                "airflow-dags-test",
                [str(BIN / "airflow"), "dags", "test", AIRFLOW_DAG],
                env=env,
                on_line=show,
            )
        except JobError:
            display.done(stage, f"Airflow: airflow dags test {AIRFLOW_DAG}", ok=False)
            raise
        display.done(stage, f"Airflow: airflow dags test {AIRFLOW_DAG}")


def run_dagster(
    commands: Commands, display: Display, work: Path, config_path: Path, results: Path
) -> None:
    """The Dagster example in one process (``main_job_dagster.py``)."""
    home = work / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    stage = display.stage("Dagster: loading examples/dagster/definitions.py")

    def show(line: str) -> None:
        if line.startswith("step "):
            display.update(stage, f"Dagster: {line.removeprefix('step ').strip()}")

    env = {
        "DAGSTER_HOME": str(home),
        "DAGSTER_DISABLE_TELEMETRY": "1",
        "FLYTECTL_CONFIG": str(config_path),
    }
    try:
        commands.run(
            "dagster", [sys.executable, str(DAGSTER_RUNNER), str(results)], env=env, on_line=show
        )
    except JobError:
        display.done(stage, "Dagster: the example's assets and jobs", ok=False)
        raise
    display.done(stage, "Dagster: the example's assets and jobs")


def register(commands: Commands, display: Display, config_path: Path) -> None:
    """``pyflyte register`` of every module of ``examples/flyte``."""
    with display.running("pyflyte register examples/flyte") as stage:
        modules = sorted(path.name for path in EXAMPLE_WORKFLOWS.glob("*.py"))
        commands.run(
            "pyflyte-register",
            [str(BIN / "pyflyte"), "--config", str(config_path), "register"]
            + ["--project", PROJECT, "--domain", DOMAIN, "--version", VERSION]
            + ["--activate-launchplans", *modules],
            cwd=EXAMPLE_WORKFLOWS,
        )
        display.done(stage, f"pyflyte register examples/flyte ({len(modules)} modules)")


def in_thread(
    target: Callable[[], None], failures: dict[str, JobError], key: str
) -> threading.Thread:
    """Runs ``target`` in a thread; a :class:`JobError` is kept in ``failures[key]``."""

    def run() -> None:
        try:
            target()
        except JobError as error:
            failures[key] = error

    thread = threading.Thread(target=run, name=key, daemon=True)
    thread.start()
    return thread


def drive_examples(
    commands: Commands, display: Display, work: Path, sandbox: SandboxProcess
) -> list[Step]:
    """Registers the workflows, runs Airflow and Dagster side by side; their rows, unchecked.

    ``airflow db migrate`` runs while pyflyte registers; the DAG test and the Dagster runs start
    once the workflows are registered.
    """
    config_path = work / "flytekit-config.yaml"
    config_path.write_text(sandbox.flytekit_config)
    dagster_results = work / "dagster-results.json"
    failures: dict[str, JobError] = {}
    registered = threading.Event()

    def register_then_dagster() -> None:
        try:
            register(commands, display, config_path)
        except JobError as error:
            failures["register"] = error
            display.done(
                display.stage("Dagster"), "Dagster: not run, the registration failed", ok=None
            )
            return
        finally:
            registered.set()
        run_dagster(commands, display, work, config_path, dagster_results)

    def airflow() -> None:
        run_airflow(commands, display, work / "airflow", sandbox, registered, failures)

    lanes = [
        in_thread(register_then_dagster, failures, "dagster"),
        in_thread(airflow, failures, "airflow"),
    ]
    for lane in lanes:
        lane.join()
    if "register" in failures:
        raise failures["register"]
    reasons = {lane: str(error) for lane, error in failures.items()}
    steps = airflow_steps(work / "airflow", AIRFLOW_DAG, reasons.get("airflow"))
    return steps + dagster_steps(dagster_results, reasons.get("dagster"))


def run_job(work: Path, console: Console) -> tuple[list[Step], str]:
    """Everything between starting and stopping the sandbox; the rows of the summary and the
    sandbox's HTTP address (which the console URLs point at)."""
    logs = work / "logs"
    logs.mkdir()
    commands = Commands(logs)
    progress = Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console
    )
    display = Display(progress)
    with progress:
        sandbox = SandboxProcess(work / "sandbox", logs / "sandbox.log")
        stop_watching = threading.Event()
        try:
            with display.running("Starting the sandbox (flyte-bridge sandbox start)") as stage:
                sandbox.wait_until_serving()
                display.done(stage, f"Sandbox serving on {sandbox.endpoint}")
            config = ClientConfig.for_sandbox(
                sandbox.endpoint,
                project=PROJECT,
                domain=DOMAIN,
                console_endpoint=sandbox.http_url or None,
            )
            with FlyteClient(config) as client:
                watcher = threading.Thread(
                    target=display.watch_flyte, args=(client, stop_watching), daemon=True
                )
                watcher.start()
                try:
                    steps = drive_examples(commands, display, work, sandbox)
                finally:
                    stop_watching.set()
                    watcher.join()
                with display.running("Reading the executions back from Flyte") as stage:
                    for step in steps:
                        check(client, step)
                    display.done(stage, "Read the executions back from Flyte")
        finally:
            commands.kill_all()
            stage = display.stage("Stopping the sandbox (SIGTERM)")
            stopped = sandbox.stop()
            outcome = "Sandbox stopped" if stopped else "Sandbox had to be killed"
            display.done(stage, outcome, stopped)
    if not stopped:
        steps.append(Step("Sandbox", "stop on SIGTERM", "-"))
        steps[-1].problems.append(f"did not stop cleanly; see {logs / 'sandbox.log'}")
    return steps, sandbox.http_url


def log_tail(path: Path | None, lines: int = 15) -> str:
    """The last ``lines`` lines of a command's log (where its error is), or "" without one."""
    if path is None or not path.is_file():
        return ""
    return "\n".join(path.read_text(errors="replace").rstrip().splitlines()[-lines:])


def reopen_hint(work: Path, http_url: str, kept: bool) -> str:
    """How to make the summary's console URLs answer again once the job's sandbox has stopped."""
    if not kept:
        return (
            "The sandbox has stopped, so the console URLs no longer answer; run with --keep to "
            "keep its data and serve them again."
        )
    port = urllib.parse.urlsplit(http_url).port if http_url else None
    http_port = f" --http-port {port}" if port else ""
    return (
        "The console URLs answer again while a sandbox serves the kept data: "
        f"flyte-bridge sandbox start --port 0{http_port} --data-dir {work / 'sandbox'}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the job, prints the summary; 0 if every step ended as expected."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--keep", action="store_true", help="keep the logs and data directory even on success"
    )
    args = parser.parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 240)
    work = Path(tempfile.mkdtemp(prefix="flyte-bridge-main-job-"))
    started = time.monotonic()
    try:
        steps, http_url = run_job(work, console)
    except JobError as error:
        console.print(f"[red]The main job could not run: {error}[/]")
        tail = log_tail(error.log_path)
        if tail:
            console.print(f"The end of {error.log_path}:", markup=False)
            console.print(tail, markup=False, highlight=False)
        console.print(f"Logs are in {work / 'logs'}")
        return 2
    except KeyboardInterrupt:
        console.print(f"Interrupted; the sandbox was stopped. Logs are in {work / 'logs'}")
        return 130
    console.print(summary(steps, TITLES))
    failed = [step for step in steps if not step.ok]
    elapsed = time.monotonic() - started
    if failed:
        console.print(
            f"[red]{len(failed)} of {len(steps)} steps did not end as expected[/] "
            f"({elapsed:.0f} s). Logs are in {work / 'logs'}"
        )
        return 1
    console.print(f"[green]All {len(steps)} steps ended as expected[/] ({elapsed:.0f} s).")
    console.print(reopen_hint(work, http_url, args.keep))
    if args.keep:
        console.print(f"Logs and sandbox data are in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
