# Opt-in, not part of `all` nor of dvc.yaml: snakemake --use-conda data/lighteval/results.json
rule lighteval:
    input:
        model="data/sft/model",
    output:
        results="data/lighteval/results.json",
        metrics="metrics/lighteval.json",
    params:
        config=lambda wildcards: stage_json("lighteval"),
        work_dir="data/lighteval/run",
    log:
        "logs/lighteval/lighteval.log",
    benchmark:
        "logs/lighteval/lighteval.benchmark.tsv"
    threads: 8
    conda:
        "../envs/lighteval.yaml"
    shell:
        "distillery lighteval --config {params.config:q} --work-dir {params.work_dir:q} "
        "--results {output.results:q} --metrics {output.metrics:q} > {log:q} 2>&1"
