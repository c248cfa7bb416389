CURATE_PLOTS = ["domains", "trace_lengths", "difficulty"]


rule curate:
    input:
        dataset=f"data/build/dataset/{PARAMS.curate.split}/train-00000-of-00001.parquet",
        card="data/build/dataset/README.md",
        code=code_record("curate"),  # what stands for its code (distillery.code_identity)
    output:
        subset=directory("data/curate/subset"),
        selection="data/curate/selection.parquet",
        metrics="metrics/curate.json",
        headline="metrics/headline/curate.json",  # its DVC metric (distillery.metrics.headline)
        plots=expand("plots/curate/{plot}.json", plot=CURATE_PLOTS),
    params:
        config=lambda wildcards: stage_json("curate"),
        plots_dir=lambda wildcards, output: Path(output.plots[0]).parent,
    log:
        "logs/curate/curate.log",
    benchmark:
        "logs/curate/curate.benchmark.tsv"
    conda:
        "../envs/cpu.yaml"
    shell:
        "distillery curate --config {params.config:q} --dataset {input.dataset:q} --card {input.card:q} "
        "--subset-dir {output.subset:q} --selection {output.selection:q} --metrics {output.metrics:q} "
        "--plots-dir {params.plots_dir:q} > {log:q} 2>&1"
