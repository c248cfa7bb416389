"""A real two-node Slurm cluster on this machine, for the tests: munged, slurmctld and two slurmd
daemons (node1, node2, each with a fake GPU) from Debian's slurm-wlm, configured in a temporary
directory and stopped by PID at the end. munged is the cluster's own (its own key and socket), so a
system munged that is missing, stale or keyed differently cannot break it. No accounting daemon: job records come from slurmctld
(`scontrol show job`, kept MinJobAge seconds), and the Snakemake plugin is told to use squeue.

    with SlurmCluster(tmp_dir) as cluster:
        env = cluster.env()          # SLURM_CONF points the clients at it
        cluster.job(job_id)          # scontrol's record of a job, as a dict
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

NODES = ("node1", "node2")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def exe(name: str) -> str:
    """The daemons live in /usr/sbin, which a CI user's PATH may lack."""
    return shutil.which(name) or next((f"{d}/{name}" for d in ("/usr/sbin", "/usr/bin") if Path(f"{d}/{name}").exists()), name)


def slurm_available() -> str | None:
    """Why a cluster cannot be started here, or None."""
    for name in ("slurmctld", "slurmd", "munged", "sbatch", "scontrol", "sinfo"):
        if not Path(exe(name)).exists():
            return f"{name} is not installed (Debian: apt-get install slurm-wlm munge; .ci/run does this)"
    if os.geteuid() != 0:
        return "starting slurmd needs root"
    return None


MARKER = "# written by distillery's tests/support/slurm_cluster.py"
ETC = Path("/etc/slurm")


class SlurmCluster:
    """The configuration goes to /etc/slurm (job steps inside a batch job look for it there, not
    at $SLURM_CONF); a configuration that is not ours is never overwritten."""

    def __init__(self, root: Path, cpus: int | None = None, memory_mb: int = 8000):
        self.root = Path(root)
        self.cpus = cpus or os.cpu_count() or 2
        self.memory_mb = memory_mb
        self.conf = ETC / "slurm.conf"
        self.pids: list[int] = []
        # A short private directory: a unix socket path must stay under 108 bytes.
        self.munge_dir = Path(tempfile.mkdtemp(prefix="distillery-munge-"))
        self.munge_socket = self.munge_dir / "munge.socket"

    def env(self) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def _write_config(self) -> None:
        r = self.root
        (r / "state").mkdir(parents=True, exist_ok=True)
        ETC.mkdir(parents=True, exist_ok=True)
        if self.conf.exists() and MARKER not in self.conf.read_text():
            raise RuntimeError(f"{self.conf} exists and is not the tests' own; refusing to overwrite a real cluster's configuration")
        ctld, slurmd = _free_port(), _free_port()
        nodes = "\n".join(
            f"NodeName={n} NodeHostname={socket.gethostname()} NodeAddr=127.0.0.1 Port={_free_port()} CPUs={self.cpus} "
            f"RealMemory={self.memory_mb} Gres=gpu:1 State=UNKNOWN"
            for n in NODES
        )
        self.conf.write_text(f"""{MARKER}
ClusterName=distillery-ci
SlurmctldHost={socket.gethostname()}(127.0.0.1)
SlurmctldPort={ctld}
SlurmdPort={slurmd}
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket={self.munge_socket}
StateSaveLocation={r}/state
SlurmdSpoolDir={r}/spool-%n
SlurmctldPidFile={r}/slurmctld.pid
SlurmdPidFile={r}/slurmd-%n.pid
SlurmctldLogFile={r}/slurmctld.log
SlurmdLogFile={r}/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MinJobAge=3600
KillWait=5
GresTypes=gpu
JobAcctGatherType=jobacct_gather/none
{nodes}
PartitionName=cpu Nodes={",".join(NODES)} Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes={",".join(NODES)} MaxTime=INFINITE State=UP
""")
        # A fake GPU: a device file slurmd can see; without File= slurmd drops the GPU and drains the node.
        (ETC / "gres.conf").write_text(f"{MARKER}\nName=gpu File=/dev/null\n")

    def _munge(self) -> None:
        d = self.munge_dir
        subprocess.run([exe("mungekey"), "--create", f"--keyfile={d}/munge.key"], check=True, capture_output=True)
        # --force: munged refuses root and a socket directory only root can enter unless forced.
        subprocess.run(
            [
                exe("munged"),
                "--force",
                f"--socket={self.munge_socket}",
                f"--key-file={d}/munge.key",
                f"--pid-file={d}/munged.pid",
                f"--log-file={d}/munged.log",
                f"--seed-file={d}/munged.seed",
            ],
            check=True,
            capture_output=True,
        )
        self.pids.append(self._pid(d / "munged.pid"))

    def start(self, timeout: float = 60) -> None:
        self._write_config()
        self._munge()
        env = self.env()
        subprocess.run([exe("slurmctld"), "-f", str(self.conf)], env=env, check=True)
        self.pids.append(self._pid(self.root / "slurmctld.pid"))
        for n in NODES:
            subprocess.run([exe("slurmd"), "-f", str(self.conf), "-N", n], env=env, check=True)
            self.pids.append(self._pid(self.root / f"slurmd-{n}.pid"))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            probe = subprocess.run(["sinfo", "-h", "-N", "-o", "%N %t"], env=env, capture_output=True, text=True)
            states = dict(line.split() for line in probe.stdout.splitlines() if line.strip())
            if all(states.get(n, "").startswith("idle") for n in NODES):
                return
            time.sleep(0.5)
        raise RuntimeError(f"Slurm nodes not idle after {timeout}s: {states}; sinfo said: {probe.stderr.strip()!r}\n" + self._log_tails())

    def _log_tails(self, lines: int = 15) -> str:
        """The end of every daemon's log, so a failure in CI explains itself."""
        out = []
        for log in [*sorted(self.root.glob("*.log")), self.munge_dir / "munged.log"]:
            if log.exists():
                tail = log.read_text(errors="replace").splitlines()[-lines:]
                out.append(f"--- {log}\n" + "\n".join(tail))
        return "\n".join(out)

    @staticmethod
    def _pid(path: Path, timeout: float = 10) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if path.exists() and path.read_text().strip():
                return int(path.read_text().strip())
            time.sleep(0.1)
        raise RuntimeError(f"{path} was not written")

    def stop(self) -> None:
        subprocess.run(["scancel", "--user", "root"], env=self.env(), capture_output=True)
        for pid in reversed(self.pids):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 15
        for pid in self.pids:
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            else:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.pids.clear()
        shutil.rmtree(self.munge_dir, ignore_errors=True)
        # Our configuration must not outlive the cluster: with a slurm.conf naming a dead
        # controller, every later `scontrol` (the Slurm executor plugin runs one whenever
        # snakemake starts) retries it for ~10 s.
        for conf in (self.conf, ETC / "gres.conf"):
            if conf.exists() and MARKER in conf.read_text():
                conf.unlink()

    def __enter__(self) -> SlurmCluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def jobs(self) -> list[dict[str, str]]:
        """slurmctld's records of every job it knows (finished ones for MinJobAge seconds)."""
        out = subprocess.run(["scontrol", "show", "job", "--oneliner"], env=self.env(), capture_output=True, text=True).stdout
        records = []
        for line in out.splitlines():
            if not line.strip() or line.startswith("No jobs"):
                continue
            rec = {}
            for field in line.split():
                if "=" in field:
                    k, v = field.split("=", 1)
                    rec[k] = v
            records.append(rec)
        return records
