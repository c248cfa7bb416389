"""Generation benchmark: never pay twice for a request. One run, against a real vLLM server (the
CPU build in .venv-vllm) serving the tiny teacher, with a counting proxy in front of it so every
HTTP request vLLM is asked for is seen.

    make setup && .venv/bin/python benchmarks/generate_resume.py [--problems 500]

(a) growth: requests made when the sample grows by 10%, over the requests the new problems need
    (target 1.00);
(b) SIGKILL: requests redone after a shard is killed mid-run, over the in-flight limit (target <= 1);
(c) the client's own CPU time per request, and how many servers one client core could drive at
    OpenR1's rate (25 generations per H100-hour, 16 H100 per server);
(d) a no-op re-run of a finished shard of 2 x --problems requests: wall time and requests sent
    (target 0).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the fault proxy, used here as a request counter

import openai  # noqa: E402  (imported before (c) measures CPU time, so the import is not counted)

from distillery.config import LLM, GenerateConfig, ModelsConfig, SampleConfig, stage_config  # noqa: E402
from distillery.keys import problem_key  # noqa: E402
from distillery.llm.serving import serve  # noqa: E402
from distillery.stages import generate, models, sample  # noqa: E402

from support.fault_proxy import FaultProxy  # noqa: E402

OPENR1_GENERATIONS_PER_H100_HOUR = 25
GPUS_PER_SERVER = 16
SERVERS = 100


def make_problems(n: int, path: Path) -> Path:
    ops = [("+", "sum"), ("*", "product"), ("-", "difference")]
    rows = []
    for i in range(n):
        a, b = 3 + i % 97, 7 + (i * 13) % 89
        sym, word = ops[i % 3]
        text = f"Find the {word} of {a} and {b}: compute ${a} {sym} {b}$. (problem {i})"
        rows.append({"uuid": problem_key(text, "synthetic"), "problem": text})
    pl.DataFrame(rows).write_parquet(path)
    return path


def shard_cmd(cfg: GenerateConfig, problems: Path, shard: int, out: Path) -> list[str]:
    return [
        str(Path(sys.executable).parent / "distillery"),
        "generate-shard",
        "--config",
        stage_config("generate", cfg, seed=42),
        "--problems",
        str(problems),
        "--shard",
        str(shard),
        "--generations",
        str(out),
        "--run-figures",
        str(out.with_suffix(".json")),
    ]


def run_cli(cfg, problems, shard, out, env) -> tuple[dict, float]:
    t = time.monotonic()
    r = subprocess.run(shard_cmd(cfg, problems, shard, out), env=env, capture_output=True, text=True)
    wall = time.monotonic() - t
    if r.returncode:
        sys.exit(f"shard failed:\n{r.stderr[-3000:]}")
    return json.loads(out.with_suffix(".json").read_text()), wall


def journal_lines(root: Path) -> int:
    return sum(f.read_bytes().count(b"\n") for f in (root / "generate").glob("*.jsonl"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", type=int, default=500, help="problems in the finished shard of (d); 2 samples each")
    ap.add_argument("--max-new-tokens", type=int, default=24)
    ap.add_argument("--max-in-flight", type=int, default=16)
    args = ap.parse_args()
    vllm_python = REPO / ".venv-vllm/bin/python"
    if not vllm_python.exists():
        sys.exit("needs .venv-vllm: run `make setup` first")
    os.environ.update(
        {
            "VLLM_CPU_KVCACHE_SPACE": "1",
            "DISTILLERY_SERVE_PYTHON": str(vllm_python),
            "HF_HUB_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false",
        }
    )
    work = Path(tempfile.mkdtemp(prefix="bench-generate-"))
    print(f"work dir: {work}", flush=True)

    # The tiny teacher, built by the models stage from the bundled sample, as the tests do.
    seed_problems = work / "sample/problems.parquet"
    scfg = SampleConfig.model_validate({"source": str(REPO / "data/bundled/numina_sample.jsonl"), "exclude": {"question_type": ["proof"]}})
    sample.run(
        scfg, 42, sample.Paths(problems=seed_problems, rejected=work / "sample/rejected.parquet", metrics=work / "sample/metrics.json")
    )
    template = GenerateConfig.model_fields["prompt_template"].default
    mcfg = ModelsConfig.model_validate({"tiny": {"teacher_epochs": 3, "judge_epochs": 1, "max_position_embeddings": 512}})
    models.run(
        mcfg,
        42,
        template,
        models.Paths(corpus=seed_problems, judge_template=REPO / "prompts/judge.txt", models=work / "models", metrics=work / "models.json"),
    )
    teacher = work / "models/teacher"

    port = 18000 + os.getpid() % 1000
    llm = LLM.model_validate(
        {
            "backend": "openai",
            "model": str(teacher),
            "dtype": "float32",
            "serve": {
                "engine": "vllm",
                "port": port,
                "max_model_len": 512,
                "health_timeout_s": 300,
                "extra_args": ["--enforce-eager", "--no-enable-chunked-prefill"],
            },
        }
    )
    results: dict[str, dict] = {}
    with serve(llm, work / "server-logs") as url, FaultProxy(url.removesuffix("/v1")) as proxy:

        def config(journal_shards: int) -> GenerateConfig:
            return GenerateConfig.model_validate(
                {
                    "llm": {
                        "backend": "openai",
                        "model": str(teacher),
                        "openai": {"base_urls": [proxy.base_url], "max_in_flight": args.max_in_flight, "timeout_s": 600},
                    },
                    "sampling": {"temperature": 0.6, "top_p": 0.95, "max_new_tokens": args.max_new_tokens},
                    "num_generations": 2,
                    "num_shards": journal_shards,
                }
            )

        def env_for(journal: Path) -> dict:
            return dict(os.environ, DISTILLERY_JOURNAL_DIR=str(journal))

        # (a) growth by 10%, over 2 shards.
        n0 = max(50, args.problems // 5)
        base = make_problems(n0, work / "a-base.parquet")
        grown = make_problems(n0 + n0 // 10, work / "a-grown.parquet")
        cfg = config(2)
        for s in range(2):
            run_cli(cfg, base, s, work / f"a-base-{s}.parquet", env_for(work / "j-a"))
        before = proxy.seen
        stats = [run_cli(cfg, grown, s, work / f"a-grown-{s}.parquet", env_for(work / "j-a"))[0] for s in range(2)]
        new_problems = n0 // 10
        results["a_growth"] = {
            "problems_before": n0,
            "problems_after": n0 + new_problems,
            "samples_needed": 2 * new_problems,
            "samples_generated": sum(s["generated"] for s in stats),
            "http_requests_needed": new_problems,
            "http_requests_made": proxy.seen - before,  # native n: one per problem
        }
        results["a_growth"]["ratio"] = round(results["a_growth"]["http_requests_made"] / new_problems, 3)

        # (b) SIGKILL mid-run, then resume.
        pb = make_problems(n0, work / "b.parquet")
        cfg = config(1)
        before = proxy.seen
        proc = subprocess.Popen(
            shard_cmd(cfg, pb, 0, work / "b.parquet.out"), env=env_for(work / "j-b"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        while journal_lines(work / "j-b") < n0 and proc.poll() is None:  # about half of 2*n0 samples
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        journaled = journal_lines(work / "j-b")
        run_cli(cfg, pb, 0, work / "b-resumed.parquet", env_for(work / "j-b"))
        redone = proxy.seen - before - n0
        results["b_sigkill"] = {
            "samples_journaled_at_kill": journaled,
            "http_requests_made": proxy.seen - before,
            "http_requests_needed": n0,
            "redone": redone,
            "max_in_flight": args.max_in_flight,
            "ratio": round(redone / args.max_in_flight, 3),
        }

        # (c) + (d): a finished shard of 2 x --problems requests, then a no-op re-run. The shard
        # runs in this process so its CPU time can be read; the server's CPU is another process.
        pd_ = make_problems(args.problems, work / "d.parquet")
        cfg = config(1)
        os.environ["DISTILLERY_JOURNAL_DIR"] = str(work / "j-d")
        cpu0, wall0 = time.process_time(), time.monotonic()
        df = generate.run_shard(
            cfg, 42, 0, generate.ShardPaths(problems=pd_, generations=work / "d-1.parquet", run_figures=work / "d-1.json")
        )
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
        per_request = cpu / df.height
        fleet_rate = SERVERS * GPUS_PER_SERVER * OPENR1_GENERATIONS_PER_H100_HOUR / 3600  # generations per second
        results["c_client_cpu"] = {
            "requests": df.height,
            "client_cpu_s": round(cpu, 3),
            "wall_s": round(wall, 2),
            "client_cpu_ms_per_request": round(1000 * per_request, 3),
            "openr1_rate_100_servers_per_s": round(fleet_rate, 2),
            "servers_one_core_could_drive": round(1 / per_request / (fleet_rate / SERVERS)),
        }
        before = proxy.seen
        stats, cli_wall = run_cli(cfg, pd_, 0, work / "d-2.parquet", env_for(work / "j-d"))
        results["d_noop_rerun"] = {
            "requests": df.height,
            "http_requests_made": proxy.seen - before,
            "shard_wall_s": stats["wall_s"],
            "command_wall_s": round(cli_wall, 2),
            "first_run_wall_s": round(wall, 2),
            "noop_over_first_run": round(cli_wall / wall, 4),
        }

    results["versions"] = {"openai_client": openai.__version__}
    print(json.dumps(results, indent=2))
    a, b, c, d = results["a_growth"], results["b_sigkill"], results["c_client_cpu"], results["d_noop_rerun"]
    print("\nfigure                                                   measured   target")
    print(f"(a) requests made / needed after +10% problems            {a['ratio']:8.3f}   1.00")
    print(f"(b) requests redone after SIGKILL / in-flight limit       {b['ratio']:8.3f}   <= 1.0")
    print(
        f"(c) client CPU per request (ms)                          {c['client_cpu_ms_per_request']:8.3f}   "
        f"one core drives {c['servers_one_core_could_drive']} servers at OpenR1's rate (need 100)"
    )
    print(f"(d) no-op re-run of {d['requests']} requests: requests sent             {d['http_requests_made']:8d}   0")
    print(
        f"    no-op re-run wall / first run wall                   {d['noop_over_first_run']:8.4f}   "
        f"({d['command_wall_s']} s vs {d['first_run_wall_s']} s)"
    )
    (REPO / "benchmarks/results").mkdir(exist_ok=True)
    (REPO / "benchmarks/results/generate_resume.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
