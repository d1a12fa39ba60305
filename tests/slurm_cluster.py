"""A throwaway single-node SLURM cluster for tests, started from Debian's packages.

The acceptance test wants the real SLURM path (``sbatch``, and submitit / Hydra's
``submitit_slurm`` launcher on top of it), not a mock. :func:`slurm_cluster` starts ``munged``,
``slurmctld`` and ``slurmd`` as root with every key, socket, state, spool, pid and log file in a
temporary directory and free TCP ports, so it leaves the machine's own SLURM/munge alone, then
yields the environment (``SLURM_CONF``) a subprocess needs for ``sbatch``/``squeue``/``scancel``.
It is built for a container: no cgroups (``proctrack/linuxproc``, ``task/none``) and no accounting
database, so ``sacct`` reports "accounting storage is disabled" (submitit then reads its result
files instead). Packages: ``apt-get install slurmctld slurmd slurm-client munge``.

If SLURM cannot run here it raises :class:`ClusterUnavailable` with a one-line reason, meant for
``pytest.skip(str(exc))``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

PARTITION = "debug"
PACKAGES = "apt-get install slurmctld slurmd slurm-client munge"
_BINARIES = {  # binary -> Debian package
    "munged": "munge",
    "slurmctld": "slurmctld",
    "slurmd": "slurmd",
    "sbatch": "slurm-client",
    "sinfo": "slurm-client",
    "scancel": "slurm-client",
}


class ClusterUnavailable(Exception):
    """SLURM cannot be started here; ``str(exc)`` is a one-line reason to skip with."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _last_line(d: Path, name: str) -> str:
    """Last line ``name`` logged (its log file, else its stdout/stderr)."""
    for path in (d / f"{name}.log", d / f"{name}.out"):
        if path.exists() and (text := path.read_text(errors="replace").strip()):
            return text.splitlines()[-1]
    return f"(no output from {name})"


def _node_line(host: str) -> tuple[str, int, int]:
    """``NodeName=... CPUs=... RealMemory=...`` for this machine, as ``slurmd -C`` reports it."""
    out = subprocess.run(
        ["slurmd", "-C"], check=False, capture_output=True, text=True, timeout=30
    ).stdout
    words = dict(w.split("=", 1) for w in out.split("\n", 1)[0].split() if "=" in w)
    if "CPUs" not in words or "RealMemory" not in words:
        raise ClusterUnavailable(f"`slurmd -C` gave no node description: {out.strip()[:200]!r}")
    words.pop("NodeName", None)
    hardware = " ".join(f"{k}={v}" for k, v in words.items())
    node = f"NodeName={host} NodeAddr=127.0.0.1 {hardware} State=UNKNOWN"
    return node, int(words["CPUs"]), int(words["RealMemory"])


def _write_conf(d: Path, host: str, user: str) -> Path:
    node, cpus, memory = _node_line(host)
    conf = d / "slurm.conf"
    conf.write_text(f"""\
ClusterName=optbench-test
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser={user}
SlurmdUser=root
AuthType=auth/munge
# cred_expire: SLURM holds a requeued job back for cred_expire + 1 s (default 121 s)
AuthInfo=socket={d}/munge/munge.socket,cred_expire=5
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# without --mem a job would take the whole node's memory and jobs would run one at a time
DefMemPerCPU={memory // cpus}
ReturnToService=2
# too many CPUs/tasks: sbatch fails at once (else PENDING forever, and submitit has no sacct)
EnforcePartLimits=ALL
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/slurmctld.log
SlurmdLogFile={d}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
SlurmctldTimeout=10
SlurmdTimeout=10
MessageTimeout=10
InactiveLimit=0
KillWait=2
Waittime=0
# `sbatch --wait` polls every 2 s while MinJobAge <= 4 (else 2, 8, 32 s: 10 s per job)
MinJobAge=4
# start a batch job within ~1 s of submission, not 3 s
SchedulerParameters=batch_sched_delay=0
{node}
PartitionName={PARTITION} Nodes=ALL Default=YES MaxTime=INFINITE State=UP
""")
    return conf


def _start(cmd: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)


def _stop(procs: list[subprocess.Popen]) -> None:
    for proc in reversed(procs):  # slurmd, slurmctld, munged
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextlib.contextmanager
def slurm_cluster(timeout_s: float = 30.0) -> Iterator[dict[str, str]]:
    """Start munged + slurmctld + slurmd (one node, partition ``debug``); yield the env for
    ``sbatch`` & co.; cancel every job and stop the daemons on exit."""
    for binary, package in _BINARIES.items():
        if shutil.which(binary) is None:
            raise ClusterUnavailable(f"{binary} not installed ({PACKAGES}; {package} has it)")
    if os.geteuid() != 0:
        raise ClusterUnavailable("the test SLURM cluster needs root (slurmd runs jobs as root)")
    host = socket.gethostname().split(".")[0]
    user = pwd.getpwuid(os.getuid()).pw_name
    d = Path(tempfile.mkdtemp(prefix="slurm-test-"))  # 0700, as munged insists
    procs: list[subprocess.Popen] = []
    try:
        for sub in ("munge", "state", "spool"):
            (d / sub).mkdir(mode=0o700)
        key = d / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        conf = _write_conf(d, host, user)
        env = {**os.environ, "SLURM_CONF": str(conf)}

        m = d / "munge"
        procs.append(
            _start(
                [
                    "munged",
                    "--foreground",
                    "--force",
                    f"--key-file={key}",
                    f"--socket={m}/munge.socket",
                    f"--pid-file={m}/munged.pid",
                    f"--log-file={m}/munged.log",
                    f"--seed-file={m}/munged.seed",
                ],
                m / "munged.out",
                env,
            )
        )
        _wait(
            lambda: (m / "munge.socket").exists(),
            timeout_s,
            procs,
            lambda: f"munged did not start: {_last_line(m, 'munged')}",
        )
        procs.append(_start(["slurmctld", "-D", "-f", str(conf)], d / "slurmctld.out", env))
        procs.append(_start(["slurmd", "-D", "-f", str(conf)], d / "slurmd.out", env))

        def idle() -> bool:
            state = subprocess.run(
                ["sinfo", "-h", "-N", "-o", "%T", "-n", host],
                check=False,
                env=env,
                capture_output=True,
                text=True,
                timeout=10,
            ).stdout.strip()
            return state == "idle"

        def not_idle() -> str:
            for proc, name in zip(procs[1:], ("slurmctld", "slurmd")):
                if proc.poll() is not None:
                    return f"{name} exited ({proc.returncode}): {_last_line(d, name)}"
            return (
                f"slurmd did not register within {timeout_s:.0f} s: "
                f"{_last_line(d, 'slurmd')} | slurmctld: {_last_line(d, 'slurmctld')}"
            )

        _wait(idle, timeout_s, procs, not_idle)
        yield env
    finally:
        if len(procs) == 3 and procs[1].poll() is None:
            subprocess.run(
                ["scancel", "--full", "-u", user],
                check=False,
                env=env,
                capture_output=True,
                timeout=30,
            )
            time.sleep(1)  # let slurmd's steps deliver the kill before slurmd goes away
        _stop(procs)
        shutil.rmtree(d, ignore_errors=True)


def _wait(
    ready: Callable[[], bool],
    timeout_s: float,
    procs: list[subprocess.Popen],
    reason: Callable[[], str],
) -> None:
    """Poll ``ready()`` until true; raise ClusterUnavailable(reason()) on timeout or if a
    daemon exits."""
    deadline = time.monotonic() + timeout_s
    while not ready():
        if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
            raise ClusterUnavailable(reason())
        time.sleep(0.2)
