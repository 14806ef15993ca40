"""`bazaar up|down|status|demo`: the whole cluster as daemonized twistd processes.

Each service is one `twistd` with its pidfile in <data_dir>/run/ and its log in <data_dir>/log/.
The pidfiles are the only record of what runs: there is no supervisor process. These are
short-lived commands, so they block (subprocess, urllib) instead of running a reactor.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import site
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bazaar.config import Config, load_config
from bazaar.rpc.names import ORDER_SERVICE
from bazaar.rpc.transport import Transport
from bazaar.tls import certs
from bazaar.tls.identity import CATALOG, OPERATOR, frontend_name, replica_name
from bazaar.tls.public import frontend_scheme, stdlib_context
from bazaar.v1 import order_pb2, order_pb2_grpc

READY_DEADLINE = 30.0  # seconds for the front end to answer GET /leader after the last start
TWISTD_START_TIMEOUT = 60.0  # seconds for one twistd to report that its service started
STOP_DEADLINE = 10.0  # seconds between SIGTERM and SIGKILL
KILL_DEADLINE = 5.0
POLL_INTERVAL = 0.05
ORDER_SERVICE_NAME = ORDER_SERVICE
LOG_TAIL_LINES = 20

Say = Callable[[str], None]


class ClusterError(Exception):
    """The cluster could not be started or stopped; the message says why (maybe with a log)."""


@dataclass(frozen=True)
class Process:
    name: str  # catalog, order-N, frontend, frontend-N
    plugin: tuple[str, ...]  # the twistd plugin and its own arguments besides --config
    pidfile: Path
    logfile: Path


def processes(config: Config) -> list[Process]:
    """Every process of the cluster, in start order: the front end picks a leader among the
    replicas at start, and the replicas trade through the catalog."""
    run_dir, log_dir = config.data_dir / "run", config.data_dir / "log"

    def process(name: str, *plugin: str) -> Process:
        return Process(name, plugin, run_dir / f"{name}.pid", log_dir / f"{name}.log")

    # Named as their certificates are (bazaar/tls/identity.py).
    return [
        process(CATALOG, "bazaar-catalog"),
        *(process(replica_name(i), "bazaar-order", "--id", str(i)) for i in sorted(config.replicas)),
        *(process(frontend_name(i), "bazaar-frontend", *(["--id", str(i)] if i != 1 else []))
          for i in sorted(config.frontends)),
    ]


def certificate_names(config: Config) -> list[str]:
    """Every name the cluster's authority issues a certificate to: each process, and the
    operator's tools."""
    return [p.name for p in processes(config)] + [OPERATOR]


def make_certificates(config: Config, force: bool = False, say: Say = print) -> list[str]:
    """The cluster's certificates in its TLS folder, those missing (`force`: all anew)."""
    if config.tls.insecure:
        say("tls.insecure is set: no certificates are used")
        return []
    running = [p.name for p in processes(config) if running_pid(p) is not None]
    written = certs.make_certificates(config.tls_dir, certificate_names(config), force=force)
    if running and "ca" in written:
        say(f"the cluster is running ({', '.join(running)}) with the old authority: restart every process "
            "(`bazaar down`, `bazaar up`), or those started now will not trust those still running")
    if written:
        say(f"certificates made in {config.tls_dir}: {', '.join(written)}")
    return written


def operator_channel(config: Config, address: str) -> grpc.Channel:
    """A channel to a process of the cluster, as the operator's tools."""
    return Transport.for_process(config, OPERATOR).dial(address, [])


# ---- processes and pidfiles ------------------------------------------------------------


def find_twistd() -> str:
    # The twistd of this interpreter's environment has our dependencies; another one on PATH
    # may belong to a different Python.
    beside = Path(sys.executable).parent / "twistd"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("twistd")
    if found is None:
        raise ClusterError(f"cannot find twistd next to {sys.executable} or on PATH: is Twisted installed?")
    return found


def twistd_command(twistd: str, process: Process, config: Config) -> list[str]:
    # --pidfile=PATH as one argument: running_pid recognises our processes by it.
    argv = [twistd, f"--pidfile={process.pidfile}", f"--logfile={process.logfile}", process.plugin[0]]
    if config.source is not None:
        argv += ["--config", str(config.source)]
    return argv + list(process.plugin[1:])


def child_environment() -> dict[str, str]:
    """Our environment, plus the folder holding the bazaar package on PYTHONPATH when it is not
    installed, so that a checkout's twistd finds both bazaar and its twisted/plugins dropin."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parent.parent)
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if root not in paths and root not in site.getsitepackages():
        env["PYTHONPATH"] = os.pathsep.join([root, *paths])
    return env


def read_pid(pidfile: Path) -> int | None:
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if pid > 0 else None


def is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, but belongs to someone else
    # An exited daemon stays a zombie where init does not reap it (some containers).
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def is_ours(pid: int, process: Process) -> bool:
    """Whether `pid` is a twistd started for `process`, not an unrelated process that got
    a stale pidfile's number. Without /proc (not Linux) a live pid has to be trusted."""
    if not Path("/proc/self").exists():
        return True
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return f"--pidfile={process.pidfile}".encode() in args


def running_pid(process: Process) -> int | None:
    pid = read_pid(process.pidfile)
    if pid is None or not is_alive(pid) or not is_ours(pid, process):
        return None
    return pid


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        with path.open("rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 64 * 1024))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return f"(no log at {path})"
    tail = text.splitlines()[-lines:]
    return f"last lines of {path}:\n" + "\n".join(f"  {line}" for line in tail)


def _wait_for_exit(pid: int, deadline: float) -> bool:
    end = time.monotonic() + deadline
    while is_alive(pid):
        if time.monotonic() >= end:
            return False
        time.sleep(POLL_INTERVAL)
    return True


def lingering_pids(process: Process) -> list[int]:
    """Live processes started for `process` that have no pidfile: a twistd whose service
    failed to start removes its pidfile, but threads it started can keep it alive. Found by
    their --pidfile argument under /proc; none where there is no /proc."""
    found: list[int] = []
    if not Path("/proc/self").exists():
        return found
    for entry in Path("/proc").glob("[0-9]*"):
        pid = int(entry.name)
        if pid != os.getpid() and is_ours(pid, process) and is_alive(pid):
            found.append(pid)
    return found


def stop_process(process: Process) -> str | None:
    """Stop one process: SIGTERM, then SIGKILL after STOP_DEADLINE. Returns what happened,
    None if nothing was running; removes its pidfile either way."""
    pid = running_pid(process)
    pids = [pid] if pid is not None else lingering_pids(process)
    outcomes = [_terminate(process, p) for p in pids]
    # twistd removes its pidfile on a clean exit; after SIGKILL, or a stale one, it is left.
    process.pidfile.unlink(missing_ok=True)
    return "; ".join(outcomes) or None


def _terminate(process: Process, pid: int) -> str:
    how = "stopped"
    for sig, deadline in ((signal.SIGTERM, STOP_DEADLINE), (signal.SIGKILL, KILL_DEADLINE)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            break
        if _wait_for_exit(pid, deadline):
            break
        how = f"killed (no exit {STOP_DEADLINE:g} s after SIGTERM)"
    else:
        raise ClusterError(f"{process.name} (pid {pid}) is still running even after SIGKILL")
    return f"{how} (pid {pid})"


def _stop_all(started: Iterable[Process], say: Say) -> None:
    for process in started:
        outcome = stop_process(process)
        if outcome:
            say(f"{process.name}: {outcome}")


# ---- the front end ---------------------------------------------------------------------


def frontend_url(config: Config, frontend_id: int | None = None) -> str:
    """A front end's public URL (default: the lowest id's)."""
    address = config.frontend_address(min(config.frontends) if frontend_id is None else frontend_id).address
    host = address.host.strip("[]")  # "[::1]" in the config
    if host in ("0.0.0.0", "::", ""):  # listening everywhere: loopback reaches it
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"{frontend_scheme(config)}://{host}:{address.port}"


def _opener(config: Config) -> urllib.request.OpenerDirector:
    # A proxy from the environment (http_proxy) must not stand between us and a loopback service.
    handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]
    if config.frontend.certificate is not None:  # HTTPS: trust the front end's own certificate
        handlers.append(urllib.request.HTTPSHandler(context=stdlib_context(config.frontend.certificate)))
    return urllib.request.build_opener(*handlers)


def fetch_json(config: Config, path: str, timeout: float, frontend_id: int | None = None) -> tuple[int, Any]:
    """A front end's status code and JSON body for GET `path`; raises OSError or ValueError
    when it does not answer JSON."""
    try:
        with _opener(config).open(frontend_url(config, frontend_id) + path, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:  # a status other than 2xx: its body is JSON too
        with e:
            return e.code, json.loads(e.read())


def fetch_leader(config: Config, timeout: float) -> str | None:
    """The leader from the front end's GET /leader, or None if it has no good answer."""
    try:
        code, body = fetch_json(config, "/leader", timeout)
        leader = body["data"]["leader"] if code == 200 else None
    except (OSError, ValueError, KeyError, TypeError):  # urllib's errors are OSErrors
        return None
    return leader if isinstance(leader, str) and leader else None


# ---- the commands ------------------------------------------------------------------------


def up(config: Config, wait: float = READY_DEADLINE, say: Say = print) -> None:
    """Start every process, then wait until the front end knows a leader. On any failure,
    stops whatever it started and raises ClusterError."""
    all_processes = processes(config)
    running = [f"{p.name} (pid {pid})" for p in all_processes if (pid := running_pid(p))]
    if running:
        raise ClusterError(
            f"the cluster is already running: {', '.join(running)}; `bazaar down` stops it"
        )
    twistd = find_twistd()
    make_certificates(config, say=say)
    for process in all_processes:
        process.pidfile.parent.mkdir(parents=True, exist_ok=True)
        process.logfile.parent.mkdir(parents=True, exist_ok=True)
        process.pidfile.unlink(missing_ok=True)  # stale: its pid is dead or someone else's
    started: list[Process] = []
    try:
        deadline = time.monotonic() + wait
        first_frontend = _first_frontend(config, all_processes)
        for process in all_processes:
            if process is first_frontend:
                # A front end selects a leader as it starts: with every replica serving,
                # the highest id is the one it picks (and the others adopt it).
                _await_replicas_serving(config, started, deadline)
            started.append(process)
            _start(twistd, process, config)
        leader = _await_leader(config, all_processes, max(0.0, deadline - time.monotonic()))
    except BaseException:
        _stop_all(reversed(started), say)
        raise
    urls = ", ".join(frontend_url(config, i) for i in sorted(config.frontends))
    say(f"the cluster is up: front end{'s' if len(config.frontends) > 1 else ''} {urls}, leader {leader}")
    for process in all_processes:
        say(f"  {process.name:<10} pid {read_pid(process.pidfile)}")
    say(f"logs: {config.data_dir / 'log'}/<name>.log")
    say(f"pids: {config.data_dir / 'run'}/<name>.pid")


def _start(twistd: str, process: Process, config: Config) -> None:
    # A daemonizing twistd returns once its service has started (or failed to), reporting
    # the failure in its exit status: that is the readiness signal for each process.
    # Its output goes to a file, not a pipe: a pipe inherited by the daemon would keep us
    # waiting for an end of file that never comes.
    argv = twistd_command(twistd, process, config)
    with tempfile.TemporaryFile() as output:
        try:
            result = subprocess.run(
                argv,
                env=child_environment(),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                timeout=TWISTD_START_TIMEOUT,
            )
        except subprocess.TimeoutExpired:
            raise ClusterError(
                f"{process.name} did not report its start within {TWISTD_START_TIMEOUT:g} s\n"
                + log_tail(process.logfile)
            ) from None
        output.seek(0)
        said = output.read().decode("utf-8", "replace").strip()
    if result.returncode != 0 or running_pid(process) is None:
        raise ClusterError(
            f"{process.name} did not start (twistd exit status {result.returncode}): "
            f"{' '.join(argv)}\n" + (f"{said}\n" if said else "") + log_tail(process.logfile)
        )


def replica_serving(config: Config, address: str, timeout: float) -> bool:
    """Whether the order replica at `address` reports SERVING (it has finished starting)."""
    with operator_channel(config, address) as channel:
        try:
            response = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=ORDER_SERVICE_NAME), timeout=timeout, wait_for_ready=True,
            )
        except grpc.RpcError:
            return False
    return response.status == health_pb2.HealthCheckResponse.SERVING


def _await_replicas_serving(config: Config, started: list[Process], deadline: float) -> None:
    waiting = dict(config.replicas)
    while waiting:
        for replica_id, address in list(waiting.items()):
            if replica_serving(config, str(address), timeout=POLL_INTERVAL * 5):
                del waiting[replica_id]
        if not waiting:
            return
        _check_running(started)
        if time.monotonic() >= deadline:
            names = ", ".join(f"replica {i}" for i in sorted(waiting))
            raise ClusterError(f"{names} did not report SERVING in time")
        time.sleep(POLL_INTERVAL)


def _check_running(processes: list[Process]) -> None:
    """Raises ClusterError naming the first of these started processes that no longer runs."""
    for process in processes:
        if running_pid(process) is None:
            raise ClusterError(f"{process.name} stopped while the cluster was starting\n" + log_tail(process.logfile))


def leads(config: Config, address: str, timeout: float) -> bool:
    """Whether the replica at `address` leads with its epoch established and its lease held."""
    with operator_channel(config, address) as channel:
        try:
            described = order_pb2_grpc.OrderServiceStub(channel).Describe(order_pb2.DescribeRequest(), timeout=timeout)
        except grpc.RpcError:
            return False
    return described.role == order_pb2.REPLICA_ROLE_LEADER


def _first_frontend(config: Config, all_processes: list[Process]) -> Process:
    """The front end that frontend_url names by default."""
    name = frontend_name(min(config.frontends))
    return next(p for p in all_processes if p.name == name)


def _await_leader(config: Config, all_processes: list[Process], wait: float) -> str:
    """The leader's address, once the front end names it and it serves with a majority."""
    deadline = time.monotonic() + wait
    waiting = sorted(config.frontends)  # each front end ready (GET /readyz), the first naming the leader
    leader = None
    while True:
        if leader is None:
            found = fetch_leader(config, timeout=1.0)
            leader = found if found is not None and leads(config, found, timeout=1.0) else None
        if leader is not None:
            waiting = [i for i in waiting if not frontend_ready(config, i)]
            if not waiting:
                return leader
        _check_running(all_processes)
        if time.monotonic() >= deadline:
            frontend = _first_frontend(config, all_processes)
            raise ClusterError(
                f"the front end at {frontend_url(config)} did not name a leader that serves with a "
                f"majority (GET /leader) within {wait:g} s\n" + log_tail(frontend.logfile)
                if leader is None else
                f"front end {waiting[0]} at {frontend_url(config, waiting[0])} was not ready (GET /readyz) "
                f"within {wait:g} s"
            )
        time.sleep(POLL_INTERVAL)


def frontend_ready(config: Config, frontend_id: int | None = None) -> bool:
    """Whether a front end (default: the first) answers GET /readyz with 200."""
    try:
        return fetch_json(config, "/readyz", 1.0, frontend_id)[0] == 200
    except (OSError, ValueError):
        return False


def down(config: Config, say: Say = print) -> None:
    """Stop every process, front end first; fine to repeat."""
    stopped = False
    for process in reversed(processes(config)):
        outcome = stop_process(process)
        if outcome:
            say(f"{process.name}: {outcome}")
            stopped = True
    if not stopped:
        say("the cluster is not running")


def demo(iterations: int, probability: float, seed: int | None = None, say: Say = print) -> int:
    """up, the client, down, in a fresh directory on the built-in defaults; the client's
    exit status. The directory is removed after a success and kept (for its logs) otherwise."""
    say = _surviving(say)
    workdir = Path(tempfile.mkdtemp(prefix="bazaar-demo-"))
    previous = os.getcwd()
    os.chdir(workdir)
    say(f"demo directory: {workdir}")
    config = load_config(None)  # no bazaar.toml here: the loopback defaults
    code = 1
    try:
        up(config, say=say)
        argv = [sys.executable, "-m", "bazaar", "client", "--url", frontend_url(config),
                "-n", str(iterations), "-p", repr(probability)]
        if seed is not None:
            argv += ["--seed", str(seed)]
        # The client runs its own reactor, so it gets its own process; what we printed must
        # come out before what it prints.
        sys.stdout.flush()
        code = subprocess.run(argv, env=child_environment(), stdin=subprocess.DEVNULL).returncode
        return code
    finally:
        stopped = False
        try:
            down(config, say=say)
            stopped = True
        finally:
            os.chdir(previous)
            if code == 0 and stopped:  # a folder whose processes may still run is kept
                shutil.rmtree(workdir, ignore_errors=True)
            else:
                say(f"logs kept in {workdir / 'var' / 'log'}")


def _surviving(say: Say) -> Say:
    """`say`, but a reader that went away (`bazaar demo | head`) stops only the printing:
    the cluster must still be stopped after it."""
    def safe(text: str) -> None:
        try:
            say(text)
        except BrokenPipeError:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())

    return safe
