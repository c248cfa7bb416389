rule build:
    input:
        **declared_inputs("build"),  # judged, problems, kept, stage_metrics (distillery/config/build.py), reward_model when local, code
    output:
        **declared_outputs("build"),  # the dataset's card and configs, rejected, provenance, metrics (+ headline)
    params:
        config=lambda wildcards: stage_json("build", card_settings=card_settings()),
        dataset_dir=lambda wildcards, output: Path(output.card).parent,
    log:
        "logs/build/build.log",
    benchmark:
        "logs/build/build.benchmark.tsv"
    conda:
        "../envs/cpu.yaml"
    shell:
        declared_shell("build")
