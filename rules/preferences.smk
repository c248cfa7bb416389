rule preferences:
    input:
        **declared_inputs("preferences"),  # judged, problems (sample's, or mix's), kept, code
    output:
        **declared_outputs("preferences"),  # pairs, unpaired, metrics (+ headline)
    params:
        config=lambda wildcards: stage_json("preferences"),
    log:
        "logs/preferences/preferences.log",
    benchmark:
        "logs/preferences/preferences.benchmark.tsv"
    conda:
        "../envs/cpu.yaml"
    shell:
        declared_shell("preferences")
