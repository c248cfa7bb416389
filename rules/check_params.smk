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
