rule evaluate:
    input:
        unpack(inputs_named_by_params("evaluate")),  # model (a local one), benchmark_<name> files
        code=code_record("evaluate"),  # what stands for its code (distillery.code_identity)
    output:
        samples="data/evaluate/samples.parquet",
        results="data/evaluate/results.md",
        model_card="data/evaluate/model_card.md",
        metrics="metrics/evaluate.json",
        headline="metrics/headline/evaluate.json",  # its DVC metric (distillery.metrics.headline)
    params:
        config=lambda wildcards: stage_json("evaluate", benchmark_files=benchmarks_json(PARAMS.evaluate.benchmarks)),
        # A server started by the job (evaluate.llm.serve) writes its own logs here. The journal is
        # $DISTILLERY_JOURNAL_DIR/evaluate: outside the DAG, so where it lives is not a param.
        server_logs="logs/evaluate/servers",
    log:
        "logs/evaluate/evaluate.log",
    benchmark:
        "logs/evaluate/evaluate.benchmark.tsv"
    threads: 2
    conda:
        "../envs/generate.yaml"
    shell:
        "distillery evaluate --config {params.config:q} --samples {output.samples:q} "
        "--results {output.results:q} --model-card {output.model_card:q} --metrics {output.metrics:q} "
        "--server-logs {params.server_logs:q} > {log:q} 2>&1"
