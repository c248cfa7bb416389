rule models:
    input:
        **declared_inputs("models"),  # corpus (models.tiny.corpus), judge_template, code
    output:
        **declared_outputs("models"),  # models, metrics (+ headline)
    params:
        config=lambda wildcards: stage_json("models", prompt_template=PARAMS.generate.prompt_template),
    log:
        log="logs/models/models.log",
        run_figures="logs/models/run.json",
    benchmark:
        "logs/models/models.benchmark.tsv"
    threads: 2
    conda:
        "../envs/train.yaml"
    shell:
        declared_shell("models", log="{log.log:q}")
