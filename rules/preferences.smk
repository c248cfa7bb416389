rule preferences:
    input:
        judged="data/judge/judged.parquet",
        problems=PROBLEMS_TABLE,  # sample's, or mix's when ingest names a corpus
        kept="data/dedupe/kept.parquet",
        code=code_record("preferences"),  # what stands for its code (distillery.code_identity)
    output:
        pairs="data/preferences/pairs.parquet",
        unpaired="data/preferences/unpaired.parquet",
        metrics="metrics/preferences.json",
        headline="metrics/headline/preferences.json",  # its DVC metric (distillery.metrics.headline)
    params:
        config=lambda wildcards: stage_json("preferences"),
    log:
        "logs/preferences/preferences.log",
    benchmark:
        "logs/preferences/preferences.benchmark.tsv"
    conda:
        "../envs/cpu.yaml"
    shell:
        "distillery preferences --config {params.config:q} --judged {input.judged:q} --problems {input.problems:q} "
        "--kept {input.kept:q} --pairs {output.pairs:q} --unpaired {output.unpaired:q} --metrics {output.metrics:q} > {log:q} 2>&1"
