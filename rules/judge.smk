rule judge:
    input:
        unpack(inputs_named_by_params("judge")),  # prompt_template; models when the judge is a tiny model
        verified="data/verify/verified.parquet",
        problems="data/sample/problems.parquet",
    output:
        judged="data/judge/judged.parquet",
        disagreements="data/judge/disagreements.md",
        metrics="metrics/judge.json",
    params:
        config=lambda wildcards: stage_json("judge"),
    log:
        "logs/judge/judge.log",
    benchmark:
        "logs/judge/judge.benchmark.tsv"
    threads: 2
    conda:
        "../envs/generate.yaml"
    shell:
        "distillery judge --config {params.config:q} --verified {input.verified:q} "
        "--problems {input.problems:q} --judged {output.judged:q} --disagreements {output.disagreements:q} "
        "--metrics {output.metrics:q} > {log:q} 2>&1"
