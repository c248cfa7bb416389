rule ingest:
    input:
        **declared_inputs("ingest"),  # corpus_<name>: each local corpus file ingest.corpora names; code
    output:
        **declared_outputs("ingest"),  # problems, generations, rejected, metrics (+ headline)
    params:
        config=lambda wildcards: stage_json("ingest"),
    log:
        "logs/ingest/ingest.log",
    benchmark:
        "logs/ingest/ingest.benchmark.tsv"
    conda:
        "../envs/cpu.yaml"
    shell:
        declared_shell("ingest")
