wildcard_constraints:
    shard=r"\d+",


rule generate_shard:
    input:
        problems="data/sample/problems.parquet",
        models="data/models",
    output:
        generations="data/generate/shards/shard-{shard}.parquet",
        stats="data/generate/shards/shard-{shard}.json",
    params:
        config=lambda wildcards: stage_json("generate"),
        # A server started by the job (generate.llm.serve) writes its own logs here.
        server_logs=lambda wildcards: f"logs/generate/servers/shard-{wildcards.shard}",
    log:
        "logs/generate/shard-{shard}.log",
    benchmark:
        "logs/generate/shard-{shard}.benchmark.tsv"
    threads: 2
    conda:
        "../envs/generate.yaml"
    shell:
        "distillery generate-shard --config {params.config:q} --problems {input.problems:q} "
        "--shard {wildcards.shard} --out {output.generations:q} --stats {output.stats:q} "
        "--server-logs {params.server_logs:q} > {log:q} 2>&1"


rule generate_gather:
    input:
        shards=generate_shards,
        stats=generate_shard_stats,
    output:
        generations="data/generate/generations.parquet",
        metrics="metrics/generate.json",
        throughput="metrics/generate_throughput.json",
    log:
        "logs/generate/gather.log",
    benchmark:
        "logs/generate/gather.benchmark.tsv"
    conda:
        "../envs/cpu.yaml"
    shell:
        "distillery generate-gather --shards {input.shards:q} --out {output.generations:q} "
        "--metrics {output.metrics:q} --throughput {output.throughput:q} > {log:q} 2>&1"
