wildcard_constraints:
    shard=r"\d+",
    round=r"[2-9]|[1-9]\d+",  # a later round (generate.rounds): round 1 is the rules without one


rule generate_shard:
    input:
        unpack(inputs_named_by_params("generate")),
        problems="data/sample/problems.parquet",
        code=code_record("generate"),  # what stands for its code (distillery.code_identity)
    output:
        generations="data/generate/shards/shard-{shard}.parquet",
    params:
        config=lambda wildcards: generate_json(1),
        # A server started by the job (generate.llm.serve) writes its own logs here.
        server_logs=lambda wildcards: f"logs/generate/servers/shard-{wildcards.shard}",
    log:
        log="logs/generate/shard-{shard}.log",
        # This run's reuse, requests sent and timings: they differ between runs that make the same
        # generations, so they are a log, never a hashed output.
        run_figures="logs/generate/shard-{shard}.run.json",
    benchmark:
        "logs/generate/shard-{shard}.benchmark.tsv"
    threads: 2
    conda:
        "../envs/generate.yaml"
    shell:
        "distillery generate-shard --config {params.config:q} --problems {input.problems:q} "
        "--shard {wildcards.shard} --generations {output.generations:q} --run-figures {log.run_figures:q} "
        "--server-logs {params.server_logs:q} > {log.log:q} 2>&1"


rule generate_gather:
    input:
        shards=shard_files("data/generate/shards/shard-{shard}.parquet"),
        code=code_record("generate"),  # what stands for its code (distillery.code_identity)
    output:
        generations="data/generate/generations.parquet",
        metrics="metrics/generate.json",
        headline="metrics/headline/generate.json",  # its DVC metric (distillery.metrics.headline)
    params:
        shard_figures=lambda wildcards: expand("logs/generate/shard-{shard}.run.json", shard=range(PARAMS.generate.num_shards)),
    log:
        log="logs/generate/gather.log",
        throughput="logs/generate/throughput.json",
    benchmark:
        "logs/generate/gather.benchmark.tsv"
    conda:
        "../envs/cpu.yaml"
    shell:
        "distillery generate-gather --shards {input.shards:q} --generations {output.generations:q} "
        "--metrics {output.metrics:q} --throughput {log.throughput:q} --shard-figures {params.shard_figures:q} > {log.log:q} 2>&1"


# A later round (generate.rounds, distillery.rounds): the problems its condition selects from the
# judged table of the rounds before it, sampled again; its gather merges them into that round's table.
rule generate_round_shard:
    input:
        unpack(inputs_named_by_params("generate")),
        problems="data/sample/problems.parquet",
        judged_so_far=before(judged_path),  # every generation so far, verified and judged
        code=code_record("generate"),
    output:
        generations="data/generate/round-{round}/shards/shard-{shard}.parquet",
    params:
        config=lambda wildcards: generate_json(wildcards.round),
        server_logs=lambda wildcards: f"logs/generate/round-{wildcards.round}/servers/shard-{wildcards.shard}",
    log:
        log="logs/generate/round-{round}/shard-{shard}.log",
        run_figures="logs/generate/round-{round}/shard-{shard}.run.json",
    benchmark:
        "logs/generate/round-{round}/shard-{shard}.benchmark.tsv"
    threads: 2
    conda:
        "../envs/generate.yaml"
    shell:
        "distillery generate-shard --config {params.config:q} --round {wildcards.round} --problems {input.problems:q} "
        "--judged-so-far {input.judged_so_far:q} --shard {wildcards.shard} --generations {output.generations:q} "
        "--run-figures {log.run_figures:q} --server-logs {params.server_logs:q} > {log.log:q} 2>&1"


rule generate_round_gather:
    input:
        shards=round_shard_files("data/generate/round-{round}/shards/shard-{shard}.parquet"),
        so_far=before(lambda r: f"{stage_dir('generate', r)}/generations.parquet"),
        code=code_record("generate"),
    output:
        generations="data/generate/round-{round}/generations.parquet",  # every round's up to this one
        metrics="metrics/generate_round_{round}.json",
        headline="metrics/headline/generate_round_{round}.json",
    params:
        shard_figures=lambda wildcards: expand(
            "logs/generate/round-{round}/shard-{shard}.run.json", shard=range(PARAMS.generate.num_shards), round=wildcards.round
        ),
    log:
        log="logs/generate/round-{round}/gather.log",
        throughput="logs/generate/round-{round}/throughput.json",
    benchmark:
        "logs/generate/round-{round}/gather.benchmark.tsv"
    conda:
        "../envs/cpu.yaml"
    shell:
        "distillery generate-gather --shards {input.shards:q} --so-far {input.so_far:q} --generations {output.generations:q} "
        "--metrics {output.metrics:q} --throughput {log.throughput:q} --shard-figures {params.shard_figures:q} > {log.log:q} 2>&1"
