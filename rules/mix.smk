rule mix:
    input:
        unpack(mix_inputs),  # own_problems, own_generations: sample's and generate's, when mix.own is true
        ingested_problems="data/ingest/problems.parquet",
        ingested_generations="data/ingest/generations.parquet",
        code=code_record("mix"),  # what stands for its code (distillery.code_identity)
    output:
        mixed_problems="data/mix/problems.parquet",
        mixed_generations="data/mix/generations.parquet",
        left_out="data/mix/left_out.parquet",
        metrics="metrics/mix.json",
        headline="metrics/headline/mix.json",  # its DVC metric (distillery.metrics.headline)
    params:
        config=lambda wildcards: stage_json("mix"),
        own=lambda wildcards, input: (
            f"--own-problems {shlex.quote(input.own_problems)} --own-generations {shlex.quote(input.own_generations)}"
            if PARAMS.mix.own
            else ""
        ),
    log:
        "logs/mix/mix.log",
    benchmark:
        "logs/mix/mix.benchmark.tsv"
    conda:
        "../envs/cpu.yaml"
    shell:
        "distillery mix --config {params.config:q} --ingested-problems {input.ingested_problems:q} "
        "--ingested-generations {input.ingested_generations:q} {params.own} --mixed-problems {output.mixed_problems:q} "
        "--mixed-generations {output.mixed_generations:q} --left-out {output.left_out:q} --metrics {output.metrics:q} > {log:q} 2>&1"
