# A validation of params.yaml in a second: never worth a cluster job (Snakemake runs it on the host).
localrules:
    check_params,


rule check_params:
    output:
        stamp="data/check_params/valid.txt",
    log:
        "logs/check_params/check_params.log",
    benchmark:
        "logs/check_params/check_params.benchmark.tsv"
    conda:
        "../envs/cpu.yaml"
    shell:
        "distillery check-params params.yaml --stamp {output.stamp:q} > {log:q} 2>&1"
