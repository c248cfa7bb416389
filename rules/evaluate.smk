rule evaluate:
    input:
        **declared_inputs("evaluate"),  # model (a local one), benchmark_<name> files, code
    output:
        **declared_outputs("evaluate"),  # samples, results, model_card, metrics (+ headline) (distillery/config/evaluate.py)
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
        declared_shell("evaluate")
