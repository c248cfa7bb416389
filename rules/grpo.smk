rule grpo:
    input:
        unpack(inputs_named_by_params("grpo")),  # model (the SFT student by default), accelerate_config
        default="data/build/dataset/default/train-00000-of-00001.parquet",
        extended="data/build/dataset/extended/train-00000-of-00001.parquet",
        code=code_record("grpo"),  # what stands for its code (distillery.code_identity)
    output:
        model=directory("data/grpo/model"),
        metrics="metrics/grpo.json",
        headline="metrics/headline/grpo.json",  # its DVC metric (distillery.metrics.headline)
        steps="plots/grpo/steps.json",
    params:
        # The accuracy reward checks answers with verify's settings.
        config=lambda wildcards: stage_json("grpo", verify=PARAMS.verify.model_dump(mode="json")),
        dataset_dir=lambda wildcards, input: Path(input.default).parent.parent,
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
        "distillery grpo --config {params.config:q} --dataset-dir {params.dataset_dir:q} --model {output.model:q} "
        "--metrics {output.metrics:q} --steps {output.steps:q} --checkpoints {params.checkpoints:q} "
        "--run-figures {log.run_figures:q} > {log.log:q} 2>&1"
