rule dpo:
    input:
        **declared_inputs("dpo"),  # pairs (distillery/config/dpo.py), model (the SFT student by default), accelerate_config, code
    output:
        **declared_outputs("dpo"),  # model, metrics (+ headline)
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
        declared_shell("dpo", log="{log.log:q}")
