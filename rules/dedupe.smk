rule dedupe:
    input:
        unpack(inputs_named_by_params("dedupe")),  # benchmark_<name>: the benchmark files decontaminated against
        problems=PROBLEMS_TABLE,  # sample's, or mix's when ingest names a corpus
        judged="data/judge/judged.parquet",
        code=code_record("dedupe"),  # what stands for its code (distillery.code_identity)
    output:
        kept="data/dedupe/kept.parquet",
        rejected="data/dedupe/rejected.parquet",
        contamination="data/dedupe/contamination.parquet",
        near_duplicates="data/dedupe/near_duplicates.parquet",
        metrics="metrics/dedupe.json",
        headline="metrics/headline/dedupe.json",  # its DVC metric (distillery.metrics.headline)
    params:
        config=lambda wildcards: stage_json("dedupe", benchmark_files=benchmarks_json(PARAMS.dedupe.benchmarks)),
    log:
        "logs/dedupe/dedupe.log",
    benchmark:
        "logs/dedupe/dedupe.benchmark.tsv"
    conda:
        "../envs/cpu.yaml"
    shell:
        "distillery dedupe --config {params.config:q} --problems {input.problems:q} --judged {input.judged:q} "
        "--kept {output.kept:q} --rejected {output.rejected:q} --contamination {output.contamination:q} "
        "--near-duplicates {output.near_duplicates:q} "
        "--metrics {output.metrics:q} > {log:q} 2>&1"
