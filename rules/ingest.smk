rule ingest:
    input:
        unpack(inputs_named_by_params("ingest")),  # corpus_<name>: each local corpus file ingest.corpora names
        code=code_record("ingest"),  # what stands for its code (distillery.code_identity)
    output:
        problems="data/ingest/problems.parquet",
        generations="data/ingest/generations.parquet",
        rejected="data/ingest/rejected.parquet",
        metrics="metrics/ingest.json",
        headline="metrics/headline/ingest.json",  # its DVC metric (distillery.metrics.headline)
    params:
        config=lambda wildcards: stage_json("ingest"),
    log:
        "logs/ingest/ingest.log",
    benchmark:
        "logs/ingest/ingest.benchmark.tsv"
    conda:
        "../envs/cpu.yaml"
    shell:
        "distillery ingest --config {params.config:q} --problems {output.problems:q} --generations {output.generations:q} "
        "--rejected {output.rejected:q} --metrics {output.metrics:q} > {log:q} 2>&1"
