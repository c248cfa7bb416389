rule sft:
    input:
        **declared_inputs("sft"),  # the dataset's configs (distillery/config/sft.py), models (a tiny base model), accelerate_config, code
    output:
        **declared_outputs("sft"),  # model, metrics (+ headline)
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
        declared_shell("sft", log="{log.log:q}")
