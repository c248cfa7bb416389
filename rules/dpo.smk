rule dpo:
    input:
        unpack(inputs_named_by_params("dpo")),  # model (the SFT student by default), accelerate_config
        pairs="data/preferences/pairs.parquet",
        code=code_record("dpo"),  # what stands for its code (distillery.code_identity)
    output:
        model=directory("data/dpo/model"),
        metrics="metrics/dpo.json",
        headline="metrics/headline/dpo.json",  # its DVC metric (distillery.metrics.headline)
    params:
        config=lambda wildcards: stage_json("dpo"),
        # Resumable checkpoints, outside the outputs (DVC and Snakemake delete those before a run).
        checkpoints="data/dpo/checkpoints",
    log:
        log="logs/dpo/dpo.log",
        run_figures="logs/dpo/run.json",
    benchmark:
        "logs/dpo/dpo.benchmark.tsv"
    threads: 2
    conda:
        "../envs/train.yaml"
    shell:
        "distillery dpo --config {params.config:q} --pairs {input.pairs:q} --model {output.model:q} "
        "--metrics {output.metrics:q} --checkpoints {params.checkpoints:q} --run-figures {log.run_figures:q} > {log.log:q} 2>&1"
