# Opt-in, not part of `all` nor of dvc.yaml: snakemake --use-conda data/lighteval/results.json
rule lighteval:
    input:
        **declared_inputs("lighteval"),  # model (distillery/config/lighteval.py); no code record: not a DVC stage
    output:
        **declared_outputs("lighteval"),  # results, metrics
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
        declared_shell("lighteval")
