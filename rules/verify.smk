rule verify:
    input:
        generations=GENERATIONS_TABLE,  # generate's, or mix's
        problems=PROBLEMS_TABLE,  # sample's, or mix's when ingest names a corpus
    output:
        verified="data/verify/verified.parquet",
        metrics="metrics/verify.json",
    params:
        config=lambda wildcards: stage_json("verify"),
    log:
        "logs/verify/verify.log",
    benchmark:
        "logs/verify/verify.benchmark.tsv"
    threads: 2
    conda:
        "../envs/cpu.yaml"
    shell:
        "distillery verify --config {params.config:q} --generations {input.generations:q} "
        "--problems {input.problems:q} --verified {output.verified:q} --metrics {output.metrics:q} "
        "--threads {threads} > {log:q} 2>&1"
