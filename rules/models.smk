rule models:
    input:
        problems="data/sample/problems.parquet",
        judge_template=PARAMS.judge.prompt_template,
    output:
        models=directory("data/models"),
        metrics="metrics/models.json",
    params:
        config=lambda wildcards: stage_json("models", prompt_template=PARAMS.generate.prompt_template),
    log:
        "logs/models/models.log",
    benchmark:
        "logs/models/models.benchmark.tsv"
    threads: 2
    conda:
        "../envs/train.yaml"
    shell:
        "distillery models --config {params.config:q} --problems {input.problems:q} "
        "--judge-template {input.judge_template:q} --out-dir {output.models:q} "
        "--metrics {output.metrics:q} > {log:q} 2>&1"
