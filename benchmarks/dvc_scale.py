"""DVC and Snakemake at scale: no-op `dvc repro` and `snakemake -n` on the real DAG with 1,000
generation shards and ~10 GB of outputs, and DVC's cost per file for the same bytes as few large
or many small files.

    .venv/bin/python benchmarks/dvc_scale.py [--shards 1000] [--gb 10] [--repeats 5]
                                             [--files-gb 1] [--file-counts 10,1000,10000,100000]
    .venv/bin/python benchmarks/dvc_scale.py --shards 20 --gb 0.2 --files-gb 0.05 --file-counts 10,1000   # quick

Everything happens under --workdir (default /tmp/dvc_scale), deleted at the end unless --keep.
Disk: about 2 x --gb for the DAG part (workspace + DVC cache) and 3 x --files-gb per file count,
one count at a time.

Part 1, the DAG (a copy of this checkout's working tree: the files git tracks plus untracked,
unignored ones, committed into a fresh git repo, as tests/conftest.py copies it):

1. `dvc repro` of the whole bundled DAG, for real, at the params.yaml default (2 shards). The
   no-op figures at 2 shards are measured here, as the baseline.
2. `generate.num_shards: --shards` in params.yaml; data/generate/shards/ is replaced by --shards
   synthetic shards, each a `shard-<k>.parquet` with the real shard schema (rows cycled from the
   real shard 0, `generation` replaced by random bytes in base64, uuid/request_key made unique,
   written with zstd as distillery.io.write_parquet does: random bytes do not compress, so the
   files total --gb). (Before run figures moved to logs/, each shard also had a `shard-<k>.json`.)
   data/generate/generations.parquet stays the real gather output of step 1, so every stage
   downstream of generate is unchanged and current.
3. Snakemake's view made current: `snakemake --touch` on the whole DAG. Its plan is what a real
   run would do after the num_shards change (every shard job: new params; gather: new input set;
   everything downstream: older than its inputs); --touch runs that plan without running the
   jobs: it sets each output's mtime in DAG order and records the job's metadata (params, input
   set, code) in .snakemake/metadata, as a finished job does. `snakemake -n` is then checked to
   say "Nothing to be done".
4. DVC's view made current: `dvc commit -f generate` hashes data/generate/shards, copies it into
   the cache and writes the stage's new params and outs to dvc.lock, which is what `dvc repro`
   writes after running the stage. dvc.lock and params.yaml are committed to git. `dvc status` is
   checked to say that everything is up to date.

For a no-op check neither tool opens a file's contents: DVC compares params, dvc.yaml and the
hashes in dvc.lock with the workspace's (from its state db keyed by inode, mtime and size, or by
hashing), Snakemake compares mtimes and its metadata. So the state after steps 2-4 is, for these
measurements, the state after a real run of 1,000 shards with 10 GB of generations.

Measured, each --repeats times (median and min; the very first call after the commit separately):
`dvc repro`, `dvc status`, `dvc repro generate`, `snakemake -n` (whole DAG, nothing to do),
`snakemake -n --forceall` (the same DAG with every job planned and listed), and `dvc status` after
the mtimes of all shard files changed (same contents: DVC re-hashes them all). Each command runs
as its own process; its peak memory is ru_maxrss from wait4 (the max over it and its children).

Part 2, files: --files-gb of random bytes as each of --file-counts files, each in a fresh git +
DVC repo with a local-directory remote: `dvc add` (cold: hash everything, copy into the cache),
`dvc status` (warm: the state db answers), `dvc push`, and `dvc status` after every file's mtime
changed (re-hash). The files are written just before, so they are in the page cache for all counts.

The printed output goes to benchmarks/results/dvc_scale.txt, the figures to dvc_scale.json.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from contextlib import redirect_stdout
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = REPO / ".venv" / "bin"
TARGET_S = 3.0
GIT = ["git", "-c", "user.name=b", "-c", "user.email=b@b"]


class Tee(io.TextIOBase):
    def __init__(self, *streams):
        self.streams = streams

    def write(self, s):
        for st in self.streams:
            st.write(s)
            st.flush()
        return len(s)


def env_for(repo: Path, work: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env['PATH']}"
    env["PYTHONPATH"] = str(repo / "src")  # the copy's code, not this checkout's (being edited)
    env["DISTILLERY_JOURNAL_DIR"] = str(work / "journal")
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("HF_DATASETS_OFFLINE", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env.pop("SNAKEMAKE_PROFILE", None)
    return env


def run(args: list[str], cwd: Path, env: dict, check: bool = True) -> tuple[float, float, str]:
    """Wall seconds, peak RSS in MB (the process and its children), output."""
    log = cwd.parent / f".out-{os.getpid()}.log"
    with open(log, "w") as fh:
        t = time.perf_counter()
        p = subprocess.Popen(args, cwd=cwd, env=env, stdout=fh, stderr=subprocess.STDOUT)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t
    p.returncode = os.waitstatus_to_exitcode(status)
    out = log.read_text(errors="replace")
    log.unlink()
    if check and p.returncode:
        raise SystemExit(f"{' '.join(args)} failed ({p.returncode}):\n{out[-4000:]}")
    return wall, ru.ru_maxrss / 1024, out


def repeat(name: str, args: list[str], cwd: Path, env: dict, n: int, expect: str | None = None) -> dict:
    walls, rss = [], []
    for _ in range(n):
        w, m, out = run(args, cwd, env)
        if expect and expect not in out:
            raise SystemExit(f"{' '.join(args)}: expected {expect!r} in its output:\n{out[-3000:]}")
        walls.append(w)
        rss.append(m)
    r = {
        "cmd": " ".join(args),
        "n": n,
        "median_s": round(statistics.median(walls), 3),
        "min_s": round(min(walls), 3),
        "max_s": round(max(walls), 3),
        "peak_rss_mb": round(max(rss)),
    }
    print(
        f"  {name:<44} median {r['median_s']:7.2f} s  min {r['min_s']:7.2f} s  max {r['max_s']:7.2f} s  "
        f"peak {r['peak_rss_mb']:5d} MB  (n={n})",
        flush=True,
    )
    return r


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f}"


def copy_repo(dest: Path) -> None:
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, check=True, capture_output=True, text=True
    ).stdout.splitlines()
    for f in files:
        src = REPO / f
        if src.is_file():
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / f)
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    subprocess.run(GIT + ["add", "-A"], cwd=dest, check=True)
    subprocess.run(GIT + ["commit", "-qm", "copy"], cwd=dest, check=True)


def git_commit(repo: Path, msg: str) -> None:
    subprocess.run(GIT + ["add", "-A"], cwd=repo, check=True, capture_output=True)
    subprocess.run(GIT + ["commit", "-qm", msg], cwd=repo, check=True, capture_output=True)


def synthesize_shards(shards_dir: Path, n: int, total_bytes: int) -> tuple[int, int]:
    """n shards with the real schema, random (incompressible) generations, total_bytes in all."""
    import polars as pl

    real = pl.read_parquet(shards_dir / "shard-0.parquet")
    if real.height == 0:
        real = pl.read_parquet(shards_dir / "shard-1.parquet")
    shutil.rmtree(shards_dir)
    shards_dir.mkdir()
    per_shard = total_bytes // n
    gen_chars = 16384  # a long reasoning trace; 12 KB of random bytes in base64
    raw_per_row = gen_chars * 3 // 4
    rows = max(1, per_shard // raw_per_row)
    template = real.sample(rows, with_replacement=True, seed=0)
    size = 0
    for k in range(n):
        blob = base64.b64encode(os.urandom(rows * raw_per_row)).decode()
        gens = [blob[i * gen_chars : (i + 1) * gen_chars] for i in range(rows)]
        df = template.with_columns(
            pl.Series("generation", gens),
            (pl.col("uuid") + f"-s{k}-" + pl.int_range(rows).cast(pl.String)).alias("uuid"),
            (pl.col("request_key") + f"-s{k}-" + pl.int_range(rows).cast(pl.String)).alias("request_key"),
        )
        path = shards_dir / f"shard-{k}.parquet"
        df.write_parquet(path, compression="zstd", statistics=True)
        size += path.stat().st_size
    return size, rows


def part_dag(args, work: Path) -> dict:
    repo = work / "repo"
    repo.mkdir(parents=True)
    copy_repo(repo)
    env = env_for(repo, work)
    dvc, smk = str(BIN / "dvc"), str(BIN / "snakemake")
    subprocess.run([dvc, "config", "--local", "core.site_cache_dir", str(work / "dvc_site_cache")], cwd=repo, env=env, check=True)
    res: dict = {"shards": args.shards}

    print(f"\n== Part 1: the DAG, {args.shards:,} generation shards, {args.gb:g} GB of shard outputs ==", flush=True)
    print(f"[{load()}] real `dvc repro` of the bundled DAG (params.yaml default: 2 shards) ...", flush=True)
    w, m, _ = run([dvc, "repro"], repo, env)
    res["real_repro_2_shards_s"] = round(w, 1)
    print(f"  done in {w:.1f} s (peak {m:.0f} MB)", flush=True)
    git_commit(repo, "real run, 2 shards")

    print(f"[{load()}] no-op baseline at 2 shards:", flush=True)
    res["baseline_2_shards"] = {
        "dvc repro": repeat("dvc repro (no-op)", [dvc, "repro"], repo, env, args.repeats),
        "dvc status": repeat("dvc status", [dvc, "status"], repo, env, args.repeats, expect="up to date"),
        "snakemake -n": repeat(
            "snakemake -n (nothing to do)", [smk, "-n", "--cores", "all"], repo, env, args.repeats, expect="Nothing to be done"
        ),
    }

    params = repo / "params.yaml"
    text, k = re.subn(r"(?m)^(  num_shards:) \d+", rf"\g<1> {args.shards}", params.read_text())
    assert k == 1, "generate.num_shards not found in params.yaml"
    params.write_text(text)
    print(f"[{load()}] writing {args.shards:,} synthetic shards ...", flush=True)
    t = time.perf_counter()
    # In a process of its own: Linux carries a process's peak RSS across fork and exec, so the
    # peaks measured below must come from a parent that never held the shards.
    out = subprocess.run(
        [sys.executable, __file__, "--synthesize", str(repo / "data/generate/shards"), str(args.shards), str(int(args.gb * 1e9))],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    size, rows = json.loads(out.strip().splitlines()[-1])
    res["shard_bytes"] = size
    res["rows_per_shard"] = rows
    print(f"  {size / 1e9:.2f} GB in {2 * args.shards:,} files ({rows} rows per shard) in {time.perf_counter() - t:.0f} s", flush=True)

    # --forceall: every job, so that every shard has its metadata record, as after a real run
    # (without one, Snakemake skips the params/code/input checks of that shard).
    print(f"[{load()}] snakemake --touch --forceall (whole DAG) ...", flush=True)
    w, _, out = run([smk, "--touch", "--forceall", "--cores", "1"], repo, env)
    res["snakemake_touch_s"] = round(w, 1)
    jobs = re.search(r"(?m)^total\s+(\d+)", out)
    res["snakemake_jobs"] = int(jobs.group(1)) if jobs else None
    print(f"  {w:.1f} s; {res['snakemake_jobs']} jobs touched", flush=True)
    _, _, out = run([smk, "-n", "--cores", "all"], repo, env)
    assert "Nothing to be done" in out, out[-3000:]

    print(f"[{load()}] dvc commit -f generate ...", flush=True)
    w, m, _ = run([dvc, "commit", "-f", "generate"], repo, env)
    res["dvc_commit_s"] = round(w, 1)
    res["dvc_commit_peak_rss_mb"] = round(m)
    print(f"  {w:.1f} s (hash {size / 1e9:.1f} GB + copy into the cache), peak {m:.0f} MB", flush=True)
    git_commit(repo, f"{args.shards} shards")

    print(f"[{load()}] no-op at {args.shards:,} shards:", flush=True)
    m_ = {}
    m_["dvc repro, first after commit"] = repeat(
        "dvc repro, first call after the commit", [dvc, "repro"], repo, env, 1, expect="up to date"
    )
    m_["dvc repro"] = repeat("dvc repro (no-op, warm)", [dvc, "repro"], repo, env, args.repeats, expect="up to date")
    m_["dvc status"] = repeat("dvc status", [dvc, "status"], repo, env, args.repeats, expect="up to date")
    m_["dvc repro generate"] = repeat("dvc repro generate", [dvc, "repro", "generate"], repo, env, args.repeats, expect="up to date")
    m_["snakemake -n"] = repeat(
        "snakemake -n (whole DAG, nothing to do)", [smk, "-n", "--cores", "all"], repo, env, args.repeats, expect="Nothing to be done"
    )
    m_["snakemake -n --forceall"] = repeat(
        "snakemake -n --forceall (every job planned)", [smk, "-n", "--forceall", "--cores", "all"], repo, env, args.repeats
    )
    walls = []
    for _ in range(args.rehash_repeats):
        now = time.time()
        for f in (repo / "data/generate/shards").iterdir():
            os.utime(f, (now, now))
        w, m, out = run([dvc, "status"], repo, env)
        assert "up to date" in out, out[-3000:]
        walls.append(w)
    m_["dvc status, shard mtimes changed"] = r = {
        "cmd": "touch data/generate/shards/*; dvc status",
        "n": len(walls),
        "median_s": round(statistics.median(walls), 3),
        "min_s": round(min(walls), 3),
        "max_s": round(max(walls), 3),
        "peak_rss_mb": round(m),
    }
    print(
        f"  {'dvc status, all shard mtimes changed (rehash)':<44} median {r['median_s']:7.2f} s  min {r['min_s']:7.2f} s  "
        f"max {r['max_s']:7.2f} s  peak {r['peak_rss_mb']:5d} MB  (n={len(walls)})",
        flush=True,
    )
    res["at_scale"] = m_
    print(f"[{load()}]", flush=True)
    return res


def part_files(args, work: Path) -> dict:
    counts = [int(c) for c in args.file_counts.split(",")]
    total = int(args.files_gb * 1e9)
    dvc = str(BIN / "dvc")
    print(f"\n== Part 2: {args.files_gb:g} GB as {', '.join(f'{c:,}' for c in counts)} files ==", flush=True)
    res = {}
    for c in counts:
        root = work / f"files-{c}"
        repo = root / "repo"
        repo.mkdir(parents=True)
        env = env_for(repo, work)
        subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
        subprocess.run([dvc, "init", "-q"], cwd=repo, env=env, check=True)
        subprocess.run([dvc, "config", "--local", "core.site_cache_dir", str(root / "site_cache")], cwd=repo, env=env, check=True)
        subprocess.run([dvc, "remote", "add", "-d", "local", str(root / "remote")], cwd=repo, env=env, check=True, capture_output=True)
        data = repo / "data"
        data.mkdir()
        size = total // c
        for i in range(c):
            with open(data / f"part-{i:06d}.bin", "wb") as fh:
                for off in range(0, size, 1 << 22):  # 4 MB at a time: this process stays small
                    fh.write(os.urandom(min(1 << 22, size - off)))
        print(f"[{load()}] {c:,} files of {size:,} bytes:", flush=True)
        r = {"files": c, "bytes_per_file": size}
        r["dvc add"] = repeat("dvc add (cold: hash + copy to cache)", [dvc, "add", "-q", "data"], repo, env, 1)
        r["dvc status"] = repeat("dvc status (warm state db)", [dvc, "status"], repo, env, args.repeats, expect="up to date")
        r["dvc push"] = repeat("dvc push (local remote)", [dvc, "push", "-q"], repo, env, 1)
        now = time.time()
        for f in data.iterdir():
            os.utime(f, (now, now))
        r["dvc status, mtimes changed"] = repeat(
            "dvc status, every mtime changed (rehash)", [dvc, "status"], repo, env, 1, expect="up to date"
        )
        res[str(c)] = r
        shutil.rmtree(root)
    return res


def summary(res: dict, args) -> None:
    print("\n== Summary ==")
    print(f"target for a no-op `dvc repro`: {TARGET_S:g} s")
    if "dag" in res:
        d = res["dag"]
        print(
            f"\nDAG with {d['shards']:,} generation shards ({d['shard_bytes'] / 1e9:.2f} GB in {2 * d['shards']:,} shard files) "
            f"vs the bundled 2 shards:\n"
        )
        print(f"| command | {d['shards']:,} shards: median (min) | / target | 2 shards: median | peak RSS |")
        print("| --- | --- | --- | --- | --- |")
        base = d["baseline_2_shards"]
        for name, r in d["at_scale"].items():
            b = base.get(name)
            bs = f"{b['median_s']:.2f} s" if b else ""
            print(
                f"| `{name}` | {r['median_s']:.2f} s ({r['min_s']:.2f}) | {r['median_s'] / TARGET_S:.2f}x | {bs} | "
                f"{r['peak_rss_mb']:,} MB |"
            )
        print(
            f"\nsetup: real `dvc repro` at 2 shards {d['real_repro_2_shards_s']} s; `snakemake --touch` {d['snakemake_touch_s']} s; "
            f"`dvc commit -f generate` {d['dvc_commit_s']} s"
        )
    if "files" in res:
        f = res["files"]
        counts = list(f)
        first = f[counts[0]]
        print(f"\n{args.files_gb:g} GB as N files (ratios to {int(counts[0]):,} files):\n")
        print("| files | bytes each | `dvc add` (cold) | `dvc status` (warm) | `dvc push` (local) | `dvc status`, mtimes changed |")
        print("| --- | --- | --- | --- | --- | --- |")
        for c in counts:
            r = f[c]
            cells = []
            for k in ("dvc add", "dvc status", "dvc push", "dvc status, mtimes changed"):
                cells.append(f"{r[k]['median_s']:.2f} s ({r[k]['median_s'] / first[k]['median_s']:.1f}x)")
            print(f"| {int(c):,} | {r['bytes_per_file']:,} | " + " | ".join(cells) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shards", type=int, default=1000)
    ap.add_argument("--gb", type=float, default=10.0, help="total size of the synthetic shard files")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--rehash-repeats", type=int, default=2)
    ap.add_argument("--files-gb", type=float, default=1.0)
    ap.add_argument("--file-counts", default="10,1000,10000,100000")
    ap.add_argument("--skip-dag", action="store_true")
    ap.add_argument("--skip-files", action="store_true")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/dvc_scale"))
    ap.add_argument("--keep", action="store_true", help="keep --workdir (the DAG repo) afterwards")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results", help="where dvc_scale.{txt,json} go")
    ap.add_argument("--synthesize", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.synthesize:
        d, n, total = args.synthesize
        print(json.dumps(synthesize_shards(Path(d), int(n), int(total))))
        return

    work = args.workdir
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    buf = io.StringIO()
    res: dict = {"args": {k: str(v) for k, v in vars(args).items()}}
    with redirect_stdout(Tee(sys.stdout, buf)):
        print(f"dvc_scale: {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, {load()}")
        ver = lambda c: subprocess.run([str(BIN / c), "--version"], capture_output=True, text=True).stdout.strip()  # noqa: E731
        res["versions"] = {"dvc": ver("dvc"), "snakemake": ver("snakemake")}
        print(f"dvc {res['versions']['dvc']}, snakemake {res['versions']['snakemake']}")
        res["load_before"] = os.getloadavg()
        try:
            if not args.skip_dag:
                res["dag"] = part_dag(args, work)
                if not args.keep:
                    shutil.rmtree(work / "repo")
            if not args.skip_files:
                res["files"] = part_files(args, work)
        finally:
            res["load_after"] = os.getloadavg()
            print(f"\n{load()} at the end")
            if not args.keep:
                shutil.rmtree(work, ignore_errors=True)
        summary(res, args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "dvc_scale.txt").write_text(buf.getvalue())
    (args.out / "dvc_scale.json").write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
