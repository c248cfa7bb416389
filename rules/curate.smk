rule curate:
    input:
        **declared_inputs("curate"),  # dataset, card (distillery/config/curate.py), code
    output:
        **declared_outputs("curate"),  # subset_dir, selection, metrics (+ headline), its plot data
    params:
        config=lambda wildcards: stage_json("curate"),
        plots_dir=lambda wildcards, output: Path(output.domains).parent,
    log:
        "logs/curate/curate.log",
    benchmark:
        "logs/curate/curate.benchmark.tsv"
    conda:
        "../envs/cpu.yaml"
    shell:
        declared_shell("curate")
