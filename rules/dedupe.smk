rule dedupe:
    input:
        # problems (sample's, or mix's when ingest names a corpus), judged, benchmark_<name>: the
        # benchmark files decontaminated against, code
        **declared_inputs("dedupe"),
    output:
        **declared_outputs("dedupe"),  # kept, rejected, contamination, near_duplicates, metrics (+ headline)
    params:
        config=lambda wildcards: stage_json("dedupe", benchmark_files=benchmarks_json(PARAMS.dedupe.benchmarks)),
    log:
        "logs/dedupe/dedupe.log",
    benchmark:
        "logs/dedupe/dedupe.benchmark.tsv"
    conda:
        "../envs/cpu.yaml"
    shell:
        declared_shell("dedupe")
