rule sample:
    input:
        unpack(inputs_named_by_params("sample")),  # source: the file sample.source names (none for a hub id)
        code=code_record("sample"),  # what stands for its code (distillery.code_identity)
    output:
        problems="data/sample/problems.parquet",
        rejected="data/sample/rejected.parquet",
        metrics="metrics/sample.json",
        headline="metrics/headline/sample.json",  # its DVC metric (distillery.metrics.headline)
    params:
        config=lambda wildcards: stage_json("sample"),
    log:
        "logs/sample/sample.log",
    benchmark:
        "logs/sample/sample.benchmark.tsv"
    conda:
        "../envs/cpu.yaml"
    shell:
        "distillery sample --config {params.config:q} --problems {output.problems:q} "
        "--rejected {output.rejected:q} --metrics {output.metrics:q} > {log:q} 2>&1"
