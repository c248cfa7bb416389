rule sft:
    input:
        default="data/build/dataset/default/train-00000-of-00001.parquet",
        extended="data/build/dataset/extended/train-00000-of-00001.parquet",
        models="data/models",
    output:
        model=directory("data/sft/model"),
        metrics="metrics/sft.json",
    params:
        config=lambda wildcards: stage_json("sft"),
        dataset_dir=lambda wildcards, input: Path(input.default).parent.parent,
    log:
        "logs/sft/sft.log",
    benchmark:
        "logs/sft/sft.benchmark.tsv"
    threads: 2
    conda:
        "../envs/train.yaml"
    shell:
        "distillery sft --config {params.config:q} --dataset-dir {params.dataset_dir:q} "
        "--model-out {output.model:q} --metrics {output.metrics:q} --checkpoints data/sft/checkpoints > {log:q} 2>&1"
