rule mix:
    input:
        # ingested_problems, ingested_generations; own_problems, own_generations (sample's and
        # generate's) only when mix.own is true (distillery/config/mix.py), code
        **declared_inputs("mix"),
    output:
        **declared_outputs("mix"),  # mixed_problems, mixed_generations, left_out, metrics (+ headline)
    params:
        config=lambda wildcards: stage_json("mix"),
    log:
        "logs/mix/mix.log",
    benchmark:
        "logs/mix/mix.benchmark.tsv"
    conda:
        "../envs/cpu.yaml"
    shell:
        declared_shell("mix")  # without --own-problems/--own-generations when mix.own is false
