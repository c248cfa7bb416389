rule sample:
    input:
        **declared_inputs("sample"),  # source (the file sample.source names; none for a hub id), code
    output:
        **declared_outputs("sample"),  # problems, rejected, metrics (+ headline)
    params:
        config=lambda wildcards: stage_json("sample"),
    log:
        "logs/sample/sample.log",
    benchmark:
        "logs/sample/sample.benchmark.tsv"
    conda:
        "../envs/cpu.yaml"
    shell:
        declared_shell("sample")
