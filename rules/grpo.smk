rule grpo:
    input:
        **declared_inputs("grpo"),  # problems (difficulty's kept), model, accelerate_config, code
    output:
        **declared_outputs("grpo"),  # model, metrics (+ headline), steps
    params:
        # The accuracy reward checks answers with verify's settings.
        config=lambda wildcards: stage_json("grpo", verify=PARAMS.verify.model_dump(mode="json")),
        steps=lambda wildcards, output: output.steps,
        checkpoints="data/grpo/checkpoints",
    log:
        log="logs/grpo/grpo.log",
        run_figures="logs/grpo/run.json",
    benchmark:
        "logs/grpo/grpo.benchmark.tsv"
    threads: 2
    conda:
        "../envs/train.yaml"
    shell:
        declared_shell("grpo", log="{log.log:q}")
