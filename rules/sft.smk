rule sft:
    input:
        unpack(inputs_named_by_params("sft")),  # models (a tiny base model), accelerate_config
        default="data/build/dataset/default/train-00000-of-00001.parquet",
        extended="data/build/dataset/extended/train-00000-of-00001.parquet",
        code=code_record("sft"),  # what stands for its code (distillery.code_identity)
    output:
        model=directory("data/sft/model"),
        metrics="metrics/sft.json",
        headline="metrics/headline/sft.json",  # its DVC metric (distillery.metrics.headline)
    params:
        config=lambda wildcards: stage_json("sft"),
        dataset_dir=lambda wildcards, input: Path(input.default).parent.parent,
        # Resumable checkpoints, outside the outputs (DVC and Snakemake delete those before a run);
        # removed once the model is saved.
        checkpoints="data/sft/checkpoints",
    log:
        log="logs/sft/sft.log",
        run_figures="logs/sft/run.json",
    benchmark:
        "logs/sft/sft.benchmark.tsv"
    threads: 2
    conda:
        "../envs/train.yaml"
    shell:
        "distillery sft --config {params.config:q} --dataset-dir {params.dataset_dir:q} "
        "--model {output.model:q} --metrics {output.metrics:q} --checkpoints {params.checkpoints:q} "
        "--run-figures {log.run_figures:q} > {log.log:q} 2>&1"
