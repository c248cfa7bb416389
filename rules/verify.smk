rule verify_shard:
    input:
        generations=verify_shard_generations,  # generate's shard, or mix's whole table (the shard's problems are read)
        problems=PROBLEMS_TABLE,  # sample's, or mix's when ingest names a corpus
        code=code_record("verify"),  # what stands for its code (distillery.code_identity)
    output:
        verified="data/verify/shards/shard-{shard}.parquet",
        figures="data/verify/shards/shard-{shard}.json",
    params:
        config=lambda wildcards: stage_json("verify"),
        num_shards=PARAMS.generate.num_shards,
    log:
        "logs/verify/shard-{shard}.log",
    benchmark:
        "logs/verify/shard-{shard}.benchmark.tsv"
    threads: 2
    conda:
        "../envs/cpu.yaml"
    shell:
        "distillery verify-shard --config {params.config:q} --shard {wildcards.shard} --num-shards {params.num_shards} "
        "--generations {input.generations:q} --problems {input.problems:q} --verified {output.verified:q} "
        "--figures {output.figures:q} --threads {threads} > {log:q} 2>&1"


rule verify_gather:
    input:
        shards=shard_files("data/verify/shards/shard-{shard}.parquet"),
        figures=shard_files("data/verify/shards/shard-{shard}.json"),
        problems=PROBLEMS_TABLE,
        code=code_record("verify"),  # what stands for its code (distillery.code_identity)
    output:
        verified="data/verify/verified.parquet",
        metrics="metrics/verify.json",
        headline="metrics/headline/verify.json",  # its DVC metric (distillery.metrics.headline)
    log:
        "logs/verify/gather.log",
    benchmark:
        "logs/verify/gather.benchmark.tsv"
    conda:
        "../envs/cpu.yaml"
    shell:
        "distillery verify-gather --shards {input.shards:q} --figures {input.figures:q} --problems {input.problems:q} "
        "--verified {output.verified:q} --metrics {output.metrics:q} > {log:q} 2>&1"


# A later round's generations (generate.rounds): verified as round 1's; its gather merges the rounds before.
rule verify_round_shard:
    input:
        generations="data/generate/round-{round}/shards/shard-{shard}.parquet",
        problems=PROBLEMS_TABLE,
        code=code_record("verify"),
    output:
        verified="data/verify/round-{round}/shards/shard-{shard}.parquet",
        figures="data/verify/round-{round}/shards/shard-{shard}.json",
    params:
        config=lambda wildcards: stage_json("verify"),
        num_shards=PARAMS.generate.num_shards,
    log:
        "logs/verify/round-{round}/shard-{shard}.log",
    benchmark:
        "logs/verify/round-{round}/shard-{shard}.benchmark.tsv"
    threads: 2
    conda:
        "../envs/cpu.yaml"
    shell:
        "distillery verify-shard --config {params.config:q} --shard {wildcards.shard} --num-shards {params.num_shards} "
        "--generations {input.generations:q} --problems {input.problems:q} --verified {output.verified:q} "
        "--figures {output.figures:q} --threads {threads} > {log:q} 2>&1"


rule verify_round_gather:
    input:
        shards=round_shard_files("data/verify/round-{round}/shards/shard-{shard}.parquet"),
        figures=round_shard_files("data/verify/round-{round}/shards/shard-{shard}.json"),
        so_far=before(lambda r: f"{stage_dir('verify', r)}/verified.parquet"),
        problems=PROBLEMS_TABLE,
        code=code_record("verify"),
    output:
        verified="data/verify/round-{round}/verified.parquet",  # every round's up to this one
        metrics="metrics/verify_round_{round}.json",
        headline="metrics/headline/verify_round_{round}.json",
    log:
        "logs/verify/round-{round}/gather.log",
    benchmark:
        "logs/verify/round-{round}/gather.benchmark.tsv"
    conda:
        "../envs/cpu.yaml"
    shell:
        "distillery verify-gather --shards {input.shards:q} --figures {input.figures:q} --problems {input.problems:q} "
        "--so-far {input.so_far:q} --verified {output.verified:q} --metrics {output.metrics:q} > {log:q} 2>&1"
