wildcard_constraints:
    shard=r"\d+",


rule generate_shard:
    input:
        problems="data/sample/problems.parquet",
        models="data/models",
    output:
        "data/generate/shards/shard-{shard}.parquet",
    params:
        config=lambda wildcards: stage_json("generate"),
    log:
        "logs/generate/shard-{shard}.log",
    benchmark:
        "logs/generate/shard-{shard}.benchmark.tsv"
    threads: 2
    conda:
        "../envs/generate.yaml"
    shell:
        "distillery generate-shard --config {params.config:q} --problems {input.problems:q} "
        "--shard {wildcards.shard} --out {output:q} > {log:q} 2>&1"


rule generate_gather:
    input:
        generate_shards,
    output:
        generations="data/generate/generations.parquet",
        metrics="metrics/generate.json",
    log:
        "logs/generate/gather.log",
    benchmark:
        "logs/generate/gather.benchmark.tsv"
    conda:
        "../envs/cpu.yaml"
    shell:
        "distillery generate-gather --shards {input:q} --out {output.generations:q} "
        "--metrics {output.metrics:q} > {log:q} 2>&1"
