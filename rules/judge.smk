rule judge:
    input:
        unpack(inputs_named_by_params("judge")),  # prompt_template; models when the judge is a tiny model
        verified="data/verify/verified.parquet",
        problems=PROBLEMS_TABLE,  # sample's, or mix's when ingest names a corpus
    output:
        judged="data/judge/judged.parquet",
        disagreements="data/judge/disagreements.md",
        metrics="metrics/judge.json",
    params:
        config=lambda wildcards: stage_json("judge"),
        # A server started by the job (judge.llm.serve) writes its own logs here. The journal is
        # $DISTILLERY_JOURNAL_DIR/judge: outside the DAG, so where it lives is not a param.
        server_logs="logs/judge/servers",
    log:
        "logs/judge/judge.log",
    benchmark:
        "logs/judge/judge.benchmark.tsv"
    threads: 2
    conda:
        "../envs/generate.yaml"
    shell:
        "distillery judge --config {params.config:q} --verified {input.verified:q} "
        "--problems {input.problems:q} --judged {output.judged:q} --disagreements {output.disagreements:q} "
        "--metrics {output.metrics:q} --server-logs {params.server_logs:q} > {log:q} 2>&1"
