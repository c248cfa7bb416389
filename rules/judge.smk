rule judge_shard:
    input:
        unpack(inputs_named_by_params("judge")),  # prompt_template; models when the judge is a tiny model
        verified="data/verify/shards/shard-{shard}.parquet",
        problems=PROBLEMS_TABLE,  # sample's, or mix's when ingest names a corpus
        code=code_record("judge"),  # what stands for its code (distillery.code_identity)
    output:
        judged="data/judge/shards/shard-{shard}.parquet",
    params:
        config=lambda wildcards: stage_json("judge"),
        num_shards=PARAMS.generate.num_shards,
        # A server started by the job (judge.llm.serve) writes its own logs here. The journal is
        # $DISTILLERY_JOURNAL_DIR/judge: outside the DAG, so where it lives is not a param.
        server_logs=lambda wildcards: f"logs/judge/servers/shard-{wildcards.shard}",
    log:
        "logs/judge/shard-{shard}.log",
    benchmark:
        "logs/judge/shard-{shard}.benchmark.tsv"
    threads: 2
    conda:
        "../envs/generate.yaml"
    shell:
        "distillery judge-shard --config {params.config:q} --shard {wildcards.shard} --num-shards {params.num_shards} "
        "--verified {input.verified:q} --problems {input.problems:q} --judged {output.judged:q} "
        "--server-logs {params.server_logs:q} > {log:q} 2>&1"


rule judge_gather:
    input:
        shards=shard_files("data/judge/shards/shard-{shard}.parquet"),
        problems=PROBLEMS_TABLE,
        code=code_record("judge"),  # what stands for its code (distillery.code_identity)
    output:
        judged="data/judge/judged.parquet",
        disagreements="data/judge/disagreements.md",
        metrics="metrics/judge.json",
        headline="metrics/headline/judge.json",  # its DVC metric (distillery.metrics.headline)
    params:
        config=lambda wildcards: stage_json("judge"),
    log:
        "logs/judge/gather.log",
    benchmark:
        "logs/judge/gather.benchmark.tsv"
    conda:
        "../envs/cpu.yaml"
    shell:
        "distillery judge-gather --config {params.config:q} --shards {input.shards:q} --problems {input.problems:q} "
        "--judged {output.judged:q} --disagreements {output.disagreements:q} --metrics {output.metrics:q} > {log:q} 2>&1"


# A later round's verified generations (generate.rounds): judged as round 1's; its gather merges the
# rounds before, so the last round's judged table holds every generation (distillery.rounds.final_judged).
rule judge_round_shard:
    input:
        unpack(inputs_named_by_params("judge")),
        verified="data/verify/round-{round}/shards/shard-{shard}.parquet",
        problems=PROBLEMS_TABLE,
        code=code_record("judge"),
    output:
        judged="data/judge/round-{round}/shards/shard-{shard}.parquet",
    params:
        config=lambda wildcards: stage_json("judge"),
        num_shards=PARAMS.generate.num_shards,
        server_logs=lambda wildcards: f"logs/judge/round-{wildcards.round}/servers/shard-{wildcards.shard}",
    log:
        "logs/judge/round-{round}/shard-{shard}.log",
    benchmark:
        "logs/judge/round-{round}/shard-{shard}.benchmark.tsv"
    threads: 2
    conda:
        "../envs/generate.yaml"
    shell:
        "distillery judge-shard --config {params.config:q} --shard {wildcards.shard} --num-shards {params.num_shards} "
        "--verified {input.verified:q} --problems {input.problems:q} --judged {output.judged:q} "
        "--server-logs {params.server_logs:q} > {log:q} 2>&1"


rule judge_round_gather:
    input:
        shards=round_shard_files("data/judge/round-{round}/shards/shard-{shard}.parquet"),
        so_far=before(judged_path),
        problems=PROBLEMS_TABLE,
        code=code_record("judge"),
    output:
        judged="data/judge/round-{round}/judged.parquet",  # every round's up to this one
        disagreements="data/judge/round-{round}/disagreements.md",
        metrics="metrics/judge_round_{round}.json",
        headline="metrics/headline/judge_round_{round}.json",
    params:
        config=lambda wildcards: stage_json("judge"),
    log:
        "logs/judge/round-{round}/gather.log",
    benchmark:
        "logs/judge/round-{round}/gather.benchmark.tsv"
    conda:
        "../envs/cpu.yaml"
    shell:
        "distillery judge-gather --config {params.config:q} --shards {input.shards:q} --so-far {input.so_far:q} "
        "--problems {input.problems:q} --judged {output.judged:q} --disagreements {output.disagreements:q} "
        "--metrics {output.metrics:q} > {log:q} 2>&1"
