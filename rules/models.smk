rule models:
    input:
        unpack(inputs_named_by_params("models")),  # corpus (models.tiny.corpus), judge_template
        code=code_record("models"),  # what stands for its code (distillery.code_identity)
    output:
        models=directory("data/models"),
        metrics="metrics/models.json",
        headline="metrics/headline/models.json",  # its DVC metric (distillery.metrics.headline)
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
        "distillery models --config {params.config:q} --corpus {input.corpus:q} "
        "--judge-template {input.judge_template:q} --models {output.models:q} "
        "--metrics {output.metrics:q} --run-figures {log.run_figures:q} > {log.log:q} 2>&1"
