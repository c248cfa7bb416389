rule build:
    input:
        unpack(inputs_named_by_params("build")),  # reward_model, when build.choice is reward_model and it is local
        judged="data/judge/judged.parquet",
        problems=PROBLEMS_TABLE,  # sample's, or mix's when ingest names a corpus
        kept="data/dedupe/kept.parquet",
        stage_metrics=expand("metrics/{stage}.json", stage=["sample", "generate", "verify", "judge", "dedupe"]),
        code=code_record("build"),  # what stands for its code (distillery.code_identity)
    output:
        card="data/build/dataset/README.md",
        default="data/build/dataset/default/train-00000-of-00001.parquet",
        extended="data/build/dataset/extended/train-00000-of-00001.parquet",
        rejected="data/build/rejected.parquet",
        provenance="data/build/provenance.parquet",
        metrics="metrics/build.json",
        headline="metrics/headline/build.json",  # its DVC metric (distillery.metrics.headline)
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
        "distillery build --config {params.config:q} --judged {input.judged:q} --problems {input.problems:q} "
        "--kept {input.kept:q} --dataset-dir {params.dataset_dir:q} --rejected {output.rejected:q} "
        "--metrics {output.metrics:q} --provenance {output.provenance:q} --stage-metrics {input.stage_metrics:q} > {log:q} 2>&1"
